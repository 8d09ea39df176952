# mypy: ignore-errors
"""Invoice PDFs (stub: renders plain text)."""

import io


def render_invoice(invoice):
    """Return a file-like PDF of the invoice."""
    lines = [f"Invoice {invoice.number}", f"Total {invoice.total}"]
    return io.BytesIO("\n".join(lines).encode())
