"""What the CLI prints is the text as written: model and user text are never read as rich markup."""

from __future__ import annotations

from rich.console import Console

from api.reviews import show_request


def test_a_review_shows_bracketed_text_and_long_diff_lines_whole() -> None:
    console = Console(width=60, record=True, color_system=None)
    long_line = "    invoices = Invoice.objects.for_branch(request.branch).filter(tenant=request.tenant)"
    show_request(
        {
            "description": "Fix proposal for issue #7 [/path] (mechanical diff)",
            "action_request": {
                "action": "apply_patch",
                "args": {
                    "diff": f"--- a/v.py\n+++ b/v.py\n@@ -1 +1 @@\n-x\n+{long_line}\n",
                    "rationale": "type it as list[int]; [bold] is not a style here, nor is [/b]",
                    "target": "",
                },
            },
            "config": {"allow_accept": True, "allow_edit": False, "allow_respond": True},
        },
        console,
        thread="t-1",
    )
    out = " ".join(console.export_text().split())  # lines wrap at 60 columns
    assert "Fix proposal for issue #7 [/path] (mechanical diff)" in out
    assert "target" not in out  # an input left empty is not shown
    assert "type it as list[int]; [bold] is not a style here, nor is [/b]" in out
    assert "".join(long_line.split()) in "".join(out.split())  # the diff line is wrapped, not cut at 60 columns
    assert "next: nova reviews approve t-1 | nova reviews reject t-1 --comment '...'" in out  # no edit here


def test_chat_prints_what_nova_added_after_the_streamed_reply_and_nothing_twice() -> None:
    from api.cli import unstreamed

    note = "\n\nNot in the tool results as written here, so check before relying on it:\n- core.Customer"
    assert unstreamed("core.Customer (table core_customer)" + note, "core.Customer (table core_customer)") == note
    assert unstreamed("the answer", "the answer") == ""
    assert unstreamed("I could not get a result from erp_sql", "") == "I could not get a result from erp_sql"
    assert unstreamed("a reply written again", "the first try, cut off") == ""


def test_a_memory_record_the_reply_already_quotes_is_not_said_twice() -> None:
    from api.cli import unsaid

    record = "stored in archive as oakfield_vets/payment_terms: Oakfield Vets pay on 30-day terms by bank transfer."
    quoted = (
        f"Noted: Oakfield Vets pay on 30-day terms.\n(record: {record.replace(' Oakfield', chr(10) + 'Oakfield', 1)})"
    )
    assert unsaid([record], quoted) == []
    other = "stored in archive as user/dentist: My dentist is Dr Osei."
    assert unsaid([record, other], "Noted.") == [record, other]
