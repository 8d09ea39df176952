"""ProjectReader: an unchanged project is not parsed again; an edit, a new file or a removed one is seen at once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nodes.erp.project import ProjectReader, project_stamp
from nodes.erp.tenancy_audit import mentioned_paths

SAMPLE = Path(__file__).resolve().parents[2] / "graphs" / "erp_sample"
LEAK = "invoicing/views.py"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "erp"
    shutil.copytree(SAMPLE, root)
    return root


def leak_lines(reader: ProjectReader, root: Path) -> list[int]:
    return [f.line for f in reader.audit(root)[1].findings if f.file == LEAK]


def touch_later(path: Path, text: str) -> None:
    """Write the file and move its mtime forward, so a coarse filesystem clock cannot hide the edit."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_reads_once_while_unchanged_and_again_after_a_fix(project: Path) -> None:
    reader = ProjectReader()
    assert 14 in leak_lines(reader, project)  # overdue_invoices filters by tenant only
    schema, first = reader.audit(project)
    assert reader.schema(project) is schema
    assert reader.audit(project) == (schema, first) and reader.audit(project)[1] is first and reader.reads == 1

    views = project / LEAK
    fixed = views.read_text(encoding="utf-8").replace(
        "filter(tenant=request.tenant, status=", "filter(tenant=request.tenant, branch=request.branch, status="
    )
    touch_later(views, fixed)
    assert 14 not in leak_lines(reader, project)
    assert reader.reads == 2


def test_a_new_field_a_new_file_and_a_removed_file_change_what_is_read(project: Path) -> None:
    reader = ProjectReader()
    invoice = next(m for m in reader.schema(project).models if m.label == "invoicing.Invoice")
    assert "paid_on" not in {f.name for f in invoice.fields}

    models_py = project / "invoicing" / "models.py"
    text = models_py.read_text(encoding="utf-8")
    touch_later(
        models_py,
        text.replace(
            "    number = models.CharField",
            "    paid_on = models.DateField(null=True)\n    number = models.CharField",
            1,
        ),
    )
    invoice = next(m for m in reader.schema(project).models if m.label == "invoicing.Invoice")
    assert "paid_on" in {f.name for f in invoice.fields}

    extra = project / "invoicing" / "exports.py"
    extra.write_text(
        "from invoicing.models import Invoice\n\n\ndef export(request):\n    return Invoice.objects.all()\n",
        encoding="utf-8",
    )
    assert any(f.file == "invoicing/exports.py" for f in reader.audit(project)[1].findings)
    extra.unlink()
    assert not any(f.file == "invoicing/exports.py" for f in reader.audit(project)[1].findings)
    assert reader.reads == 4


def test_the_stamp_skips_what_the_reads_skip(project: Path) -> None:
    before = project_stamp(project)
    for skipped in ("migrations", ".venv", "__pycache__"):
        (project / "invoicing" / skipped).mkdir(exist_ok=True)
        (project / "invoicing" / skipped / "x.py").write_text("X = 1\n", encoding="utf-8")
    (project / "README.md").write_text("edited\n", encoding="utf-8")
    assert project_stamp(project) == before


def test_mentioned_paths(tmp_path: Path) -> None:
    root = tmp_path / "erp"
    text = (
        f"see invoicing/views.py:14, ./orders/views.py and {root}/stock/models.py; not views.pyc;"
        " elsewhere /srv/other/app.py and views.py. again invoicing/views.py"
    )
    assert mentioned_paths(root, text) == [
        "invoicing/views.py",
        "orders/views.py",
        "stock/models.py",
        "/srv/other/app.py",
        "views.py",
    ]


def test_a_same_size_edit_in_the_same_clock_tick_and_a_replaced_file_are_seen(project: Path) -> None:
    reader = ProjectReader()
    views = project / LEAK
    before = views.stat()
    assert 14 in leak_lines(reader, project)
    swapped = views.read_text(encoding="utf-8").replace(
        "tenant=request.tenant, status=", "branch=request.branch, status="
    )
    assert len(swapped) == len(views.read_text(encoding="utf-8")), "the same size: only the stamp's inode can tell"
    replacement = views.with_suffix(".new")
    replacement.write_text(swapped, encoding="utf-8")
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old mtime kept, as `cp -p` would
    replacement.replace(views)  # saved by rename, as editors do: a new inode
    assert 14 not in leak_lines(reader, project) and reader.reads == 2
