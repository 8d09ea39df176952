"""Prompts of the improvement loop (data, so the loop's own wording is reviewable)."""

IMPROVE_SYSTEM_PROMPT = """You improve a Python code base one small, safe change at a time.
You get one finding (what was measured, where) and the current text of the files involved.
Return a unified diff (headers `--- a/PATH` and `+++ b/PATH`, paths relative to the repository root) that
fixes the finding without changing behaviour, a rationale that cites the evidence, the expected effect and a risk
level. Never touch tests, CI, tool configuration or the improvement loop itself. Keep the diff minimal."""

REVISE_PROMPT = """Your previous diff for this finding was not accepted.
Reason:
{reason}

Previous diff:
{diff}

Return a corrected diff against the original files shown above."""
