"""Tools pipeline steps call by name: issues, ERP context, patches, git history, project context, memory.

Each tool takes its rendered inputs and a `StepCall`, returns a JSON-able dict, and raises `StepError`
(retried) or `StepRefused` (not retried) with a message a person can act on.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from nodes.erp.project import ProjectReader
from nodes.erp.schema import describe_models, models_named
from nodes.erp.tenancy_audit import mentioned_paths
from nodes.pipeline import PipelineTool, StepCall, StepError, StepRefused, json_objects
from nodes.services import MemoryPort, TurnRef
from nodes.workspace import Project, Workspace

GIT_TIMEOUT_S = 20.0
MAX_DIFF_CHARS = 60_000
DESCRIBED_MIN_WORDS = 4  # an issue value this long describes an issue; a shorter one names it ("#102", "issue 102")
MAX_MODEL_FINDINGS = 6  # a described issue names no file: at most this many findings on the models it names
DIFF_FENCE = re.compile(r"```(?:diff|patch)?\s*\n(.*?)```", re.S)


class IssueSource(Protocol):
    """Where issues come from when not from a local file (e.g. GitHub with a token)."""

    async def issue(self, repo: str, number: int) -> dict[str, Any]:
        """Return `{number, title, body, labels, state}` or raise `StepRefused` when there is none."""
        ...


@dataclass(frozen=True)
class PipelineToolDeps:
    """What pipeline tools need from outside: memory, the workspace, file locations, an issue source."""

    memory: MemoryPort
    workspace: Workspace | None
    erp_project: Path
    issues_file: Path
    output_dir: Path
    issue_source: IssueSource | None = None
    extra: Mapping[str, PipelineTool] = field(default_factory=dict)
    projects: ProjectReader = field(default_factory=ProjectReader)


def _int(value: Any, what: str) -> int:
    match = re.search(r"\d+", str(value))
    if match is None:
        raise StepRefused(f"{what} {value!r} is not a number")
    return int(match.group())


def _project_dir(value: Any, deps: PipelineToolDeps) -> Path:
    path = Path(str(value)).expanduser() if value else deps.erp_project
    if not path.is_dir():
        raise StepRefused(f"project directory {path} does not exist")
    return path


def _load_issues(source: str) -> tuple[Path, list[Any]]:
    path = Path(source).expanduser()
    try:
        issues = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepRefused(f"issues file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise StepRefused(f"issues file {path} is not JSON: {exc}") from None
    if not isinstance(issues, list):
        raise StepRefused(f"issues file {path} must hold a JSON list of issues")
    return path, issues


def described_issue(text: str) -> dict[str, Any] | None:
    """Return an issue described in words (`{number: None, title, body, ...}`), or None for a number like "#102".

    A value of a few words with a number in it ("issue 102") names an issue; anything longer describes one.
    """
    text = text.strip()
    if len(text.split()) < DESCRIBED_MIN_WORDS:
        return None
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".!? ")
    title = first if len(first) <= 80 else first[:79].rsplit(" ", 1)[0] + "…"
    return {"number": None, "title": title, "body": text, "labels": [], "state": "described"}


def issue_label(issue: Mapping[str, Any]) -> str:
    """Return how an issue is named: `#102 Overdue invoices ...`, or its title in quotes when it was described."""
    if issue.get("number") is None:
        return f"“{issue.get('title')}” (described in chat)"
    return f"#{issue.get('number')} {issue.get('title')}"


def read_issue(deps: PipelineToolDeps) -> PipelineTool:
    """Read one issue from the issues file or from the issue source when `repo` is given, or take it as described."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        described = described_issue(str(inputs.get("issue") or ""))
        if described is not None:
            return {**described, "summary": issue_label(described)}
        number = _int(inputs.get("issue"), "issue")
        repo = str(inputs.get("repo") or "")
        if repo:
            if deps.issue_source is None:
                raise StepRefused(f"repo={repo} needs NOVA_GITHUB_TOKEN to read its issues")
            issue = await deps.issue_source.issue(repo, number)
        else:
            path, issues = await asyncio.to_thread(_load_issues, str(inputs.get("source") or deps.issues_file))
            found = [i for i in issues if isinstance(i, dict) and i.get("number") == number]
            if not found:
                known = sorted(int(i.get("number") or 0) for i in issues if isinstance(i, dict))
                raise StepRefused(f"no issue #{number} in {path}; open issues: {known}")
            issue = found[0]
        issue = {k: issue.get(k) for k in ("number", "title", "body", "labels", "state")}
        return {**issue, "summary": issue_label(issue)}

    return run


def _issue_text(issue: Mapping[str, Any]) -> str:
    return f"{issue.get('title', '')}\n{issue.get('body', '')}"


def _function_source(path: Path, line: int) -> str:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    best: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            end = getattr(node, "end_lineno", node.lineno)
            if node.lineno <= line <= end and (best is None or node.lineno >= best.lineno):
                best = node
    lines = path.read_text(encoding="utf-8").splitlines()
    if best is None:
        return "\n".join(lines[max(0, line - 3) : line + 2])
    return "\n".join(lines[best.lineno - 1 : best.end_lineno or best.lineno])


def erp_context(deps: PipelineToolDeps) -> PipelineTool:
    """Find the models and code an issue touches: mentioned files, their tenancy findings, the models' fields.

    An issue that names no file (one described in chat) gets the tenancy findings on the models it names.
    """

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        issue = inputs.get("issue")
        if not isinstance(issue, Mapping):
            raise StepRefused("erp_context needs the issue (the read_issue step's output)")
        root = _project_dir(inputs.get("project"), deps)
        schema, audit = await asyncio.to_thread(deps.projects.audit, root)
        files = {p for p in mentioned_paths(root, _issue_text(issue)) if not Path(p).is_absolute()}
        named = {f"{m.app}.{m.name}" for m in models_named(schema.models, _issue_text(issue), apps=False)}
        touched = {f.file for f in audit.findings if f.file in files or f.file.rsplit("/", 1)[-1] in files}
        findings = [f for f in audit.findings if f.file in touched]
        if issue.get("number") is None and not files:  # described in chat, naming models but no file
            findings = [f for f in audit.findings if f.model in named][:MAX_MODEL_FINDINGS]
            touched = {f.file for f in findings}
        labels = {f.model for f in findings} | named
        models = [m for m in schema.models if f"{m.app}.{m.name}" in labels]
        lines = [f"Issue {issue_label(issue)}", ""]
        lines += describe_models(models)
        for f in findings:
            lines.append(f"finding {f.file}:{f.line} [{f.kind}] {f.reason}")
            lines.append("  " + _function_source(root / f.file, f.line).replace("\n", "\n  "))
        for name in sorted(files - {f.file for f in findings}):
            if (root / name).is_file():
                lines.append(f"file {name} (no tenancy finding)")
        return {
            "models": sorted(labels),
            "files": sorted(files),
            "findings": [vars(f) for f in findings],
            "context": "\n".join(lines),
            "summary": f"{len(labels)} model(s), {len(findings)} finding(s) in {sorted(touched) or sorted(files)}",
        }

    return run


_SHORTCUT = re.compile(r"get_object_or_404\(\s*(?P<model>[A-Z]\w*)\s*,")
_MANAGER = re.compile(r"\b(?P<model>[A-Z]\w*)\.objects\.(?P<method>filter|get|all|exclude)\(")


def _request_expr(function_source: str) -> str:
    return "self.request" if re.search(r"def \w+\(\s*self\b", function_source) else "request"


def _scoped_line(line: str, finding: Mapping[str, Any], request: str) -> str | None:
    scope = "for_branch({r}.branch)" if "branch" in finding["reason"] else "for_tenant({r}.tenant)"
    scope = scope.format(r=request)
    model = str(finding["model"]).rsplit(".", 1)[-1]
    if finding["kind"] == "get_object":
        match = _SHORTCUT.search(line)
        if match and match["model"] == model:
            return line[: match.start("model")] + f"{model}.objects.{scope}" + line[match.end("model") :]
    if finding["kind"] == "queryset":
        match = _MANAGER.search(line)
        if match and match["model"] == model:
            at = match.start("method")
            return line[:at] + f"{scope}." + line[at:]
    return None


def unified_diff(path: str, before: str, after: str) -> str:
    """Return a git-style unified diff of one file."""
    import difflib

    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    return "".join(lines)


def scope_fix(deps: PipelineToolDeps) -> PipelineTool:
    """Draft the mechanical fix for queryset and get_object findings: scope them with the ERP's own managers."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        root = _project_dir(inputs.get("project"), deps)
        findings = inputs.get("findings") or []
        edits: dict[str, list[str]] = {}
        covered, left = [], []
        for f in findings:
            path = root / f["file"]
            lines = edits.setdefault(f["file"], path.read_text(encoding="utf-8").splitlines(keepends=True))
            new = _scoped_line(lines[f["line"] - 1], f, _request_expr(_function_source(path, f["line"])))
            if new is None:
                left.append(f"{f['file']}:{f['line']} [{f['kind']}]")
                continue
            lines[f["line"] - 1] = new
            covered.append(f"{f['file']}:{f['line']}")
        diff = "".join(
            unified_diff(name, (root / name).read_text(encoding="utf-8"), "".join(lines))
            for name, lines in sorted(edits.items())
        )
        summary = f"mechanical fix for {len(covered)} finding(s)" + (f"; not covered: {left}" if left else "")
        return {"diff": diff, "covered": covered, "not_covered": left, "summary": summary}

    return run


def extract_diff(text: str) -> str:
    """Return the unified diff in a model's reply: a fenced ```diff block, or the reply itself if it is one."""
    for match in DIFF_FENCE.finditer(text):
        block = match.group(1)
        if "--- " in block and "+++ " in block:
            return block if block.endswith("\n") else block + "\n"
    if text.lstrip().startswith(("--- ", "diff --git")):
        return text if text.endswith("\n") else text + "\n"
    return ""


def _diff_paths(diff: str) -> list[str]:
    paths = []
    for line in diff.splitlines():
        if line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
            paths.append(line[4:].split("\t")[0].removeprefix("b/"))
    return paths


def _safe_paths(diff: str) -> list[str]:
    paths = _diff_paths(diff)
    for path in paths:
        if path.startswith("/") or ".." in Path(path).parts or path.startswith(".git"):
            raise StepRefused(f"the diff touches {path!r}, outside the project")
    if not paths:
        raise StepRefused("the diff names no file")
    return paths


def git_apply_check(root: Path, diff: str) -> str | None:
    """Return None when the diff applies cleanly to a copy of `root`, else git's complaint."""
    if len(diff) > MAX_DIFF_CHARS:
        return f"the diff is {len(diff)} characters; at most {MAX_DIFF_CHARS}"
    with tempfile.TemporaryDirectory(prefix="nova-check-") as tmp:
        for path in _safe_paths(diff):
            src = root / path
            if src.is_file():
                (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, Path(tmp) / path)
        try:
            proc = subprocess.run(
                ["git", "apply", "--check", "--recount", "-"],
                input=diff.encode(),
                cwd=tmp,
                capture_output=True,
                timeout=GIT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "git apply --check timed out"
        return None if proc.returncode == 0 else proc.stderr.decode(errors="replace").strip()[:500]


def check_patch(deps: PipelineToolDeps) -> PipelineTool:
    """Pick the diff to review (the model's if it applies, else the mechanical one) and prove it applies."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        root = _project_dir(inputs.get("project") or inputs.get("target"), deps)
        candidates: list[tuple[str, str]] = []
        if inputs.get("diff"):
            candidates.append(("reviewer", str(inputs["diff"])))
        else:
            drafted = extract_diff(str(inputs.get("draft") or ""))
            if drafted:
                candidates.append(("model", drafted))
            if inputs.get("fallback"):
                candidates.append(("mechanical", str(inputs["fallback"])))
        if not candidates:
            raise StepRefused(
                "no diff to check: the draft has no ```diff block and no mechanical fix covers this issue;"
                " a stronger model (NOVA_LLM_BASE_URL) can draft one, then `nova pipeline resume`"
            )
        problems = []
        for source, diff in candidates:
            problem = await asyncio.to_thread(git_apply_check, root, diff)
            if problem is None:
                files = _diff_paths(diff)
                return {"diff": diff, "source": source, "files": files, "summary": f"{source} diff applies to {files}"}
            problems.append(f"{source} diff: {problem}")
        raise StepRefused("no diff applies: " + "; ".join(problems))

    return run


def write_patch(deps: PipelineToolDeps) -> PipelineTool:
    """Write the approved diff and its explanation under NOVA_HOME/outputs/patches (idempotent per thread)."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        diff = str(inputs.get("diff") or "")
        if not diff:
            raise StepRefused("nothing to write: the review passed no diff")
        number = "described" if described_issue(str(inputs.get("issue") or "")) else _int(inputs.get("issue"), "issue")
        stem = f"issue-{number}-{call.thread_id[:8] or 'local'}"
        folder = deps.output_dir / "patches"
        folder.mkdir(parents=True, exist_ok=True)
        patch = folder / f"{stem}.patch"
        note = folder / f"{stem}.md"
        tmp = patch.with_suffix(".patch.tmp")
        tmp.write_text(diff, encoding="utf-8")
        tmp.replace(patch)
        note.write_text(str(inputs.get("explanation") or "").strip() + "\n", encoding="utf-8")
        return {"path": str(patch), "explanation_path": str(note), "summary": f"wrote {patch}"}

    return run


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise StepError(f"git {' '.join(args)} timed out after {GIT_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        raise StepRefused(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()[:300]}")
    return proc.stdout.decode(errors="replace")


def _repo_dir(value: str) -> Path:
    repo = Path(value).expanduser()
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise StepRefused(f"{repo} is not a git repository")
    return repo


CONVENTIONAL = re.compile(r"^(?P<type>feat|fix|perf|refactor|docs|test|chore|build|ci)(?:\([^)]*\))?!?:\s*(?P<rest>.+)")
GROUPS = {"feat": "Features", "fix": "Fixes", "perf": "Performance"}


def git_log(deps: PipelineToolDeps) -> PipelineTool:
    """List the commits between two refs of a git repository, grouped for release notes."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        repo = await asyncio.to_thread(_repo_dir, str(inputs.get("repo") or "."))
        start, end = str(inputs.get("from") or ""), str(inputs.get("to") or "HEAD")
        for ref in filter(None, (start, end)):
            if ref.startswith("-"):
                raise StepRefused(f"ref {ref!r} is not a ref")
            await asyncio.to_thread(_git, repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        span = f"{start}..{end}" if start else end
        out = await asyncio.to_thread(
            _git, repo, "log", "--no-merges", "--format=%h%x1f%an%x1f%ad%x1f%s", "--date=short", span
        )
        commits = []
        for line in out.splitlines():
            sha, author, date, subject = (line.split("\x1f") + ["", "", "", ""])[:4]
            commits.append({"sha": sha, "author": author, "date": date, "subject": subject})
        if not commits:
            raise StepRefused(f"no commits in {span}")
        grouped: dict[str, list[str]] = {}
        for c in commits:
            m = CONVENTIONAL.match(c["subject"])
            heading = GROUPS.get(m["type"], "Other changes") if m else "Other changes"
            grouped.setdefault(heading, []).append((m["rest"] if m else c["subject"]) + f" ({c['sha']})")
        order = ["Features", "Fixes", "Performance", "Other changes"]
        text = "\n\n".join(f"## {h}\n" + "\n".join(f"- {s}" for s in grouped[h]) for h in order if h in grouped)
        return {"commits": commits, "grouped": text, "range": span, "summary": f"{len(commits)} commit(s) in {span}"}

    return run


def _fuzzy_project(workspace: Workspace, wanted: str) -> Project | None:
    key = wanted.casefold()
    hits = [p for p in workspace.projects if key in p.slug or any(key in n.casefold() for n in p.names())]
    return hits[0] if len(hits) == 1 else None


def project_context(deps: PipelineToolDeps) -> PipelineTool:
    """Gather a project's context (or every project's): the workspace entry and what memory holds about it."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        if deps.workspace is None:
            raise StepRefused("no workspace is loaded (NOVA_WORKSPACE)")
        wanted = str(inputs.get("project") or "all")
        projects = deps.workspace.projects
        if wanted != "all":
            project = deps.workspace.project(wanted) or _fuzzy_project(deps.workspace, wanted)
            if project is None:
                known = [p.slug for p in projects]
                raise StepRefused(f"unknown project {wanted!r}; the workspace has {known}")
            projects = (project,)
        blocks = []
        for p in projects:
            hits = await deps.memory.search(call.user_id, f"{p.name} {p.slug}", limit=6)
            remembered = "\n".join(f"- {m.subject}: {m.text}" for m in hits) or "- (nothing remembered yet)"
            facts = "\n".join(f"- {f}" for f in p.facts)
            blocks.append(f"### {p.name} ({p.slug}, {p.kind})\n{p.description}\n{facts}\nRemembered:\n{remembered}")
        text = "\n\n".join(blocks)
        return {
            "projects": [p.slug for p in projects],
            "context": text,
            "summary": f"context of {len(projects)} project(s)",
        }

    return run


def save_text(deps: PipelineToolDeps) -> PipelineTool:
    """Save a final text (digest, client update, release notes) under NOVA_HOME/outputs/<kind>/."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        text = str(inputs.get("text") or "").strip()
        if not text:
            raise StepRefused("nothing to save: the text is empty")
        kind = re.sub(r"[^a-z0-9_-]", "", str(inputs.get("kind") or call.pipeline)) or "text"
        folder = deps.output_dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        path = folder / f"{stamp}-{call.thread_id[:8] or 'local'}.md"
        path.write_text(text + "\n", encoding="utf-8")
        return {"path": str(path), "text": text, "summary": f"saved {path}"}

    return run


def _rule_entries(notes: str) -> list[dict[str, str]]:
    entries = []
    for raw in re.split(r"(?<=[.!?])\s+|\n+", notes):
        sentence = raw.strip(" -*•\t")
        if len(sentence.split()) < 4:
            continue
        topic = " ".join(re.findall(r"[A-Za-z][\w-]*", sentence)[:3]).casefold()
        entries.append({"topic": topic, "statement": sentence.rstrip(".") + "."})
    return entries


def parse_entries(deps: PipelineToolDeps) -> PipelineTool:
    """Read the model's JSON lines of knowledge entries; fall back to one entry per sentence of the notes."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        entries = []
        for item in json_objects(str(inputs.get("draft") or "")):
            statement = str(item.get("statement") or item.get("fact") or "").strip()
            if statement:
                entries.append({"topic": str(item.get("topic") or "").strip()[:80], "statement": statement[:500]})
        method = "model"
        if not entries:
            entries, method = _rule_entries(str(inputs.get("notes") or "")), "rules"
        if not entries:
            raise StepRefused("no knowledge entries found in the notes")
        return {"entries": entries, "method": method, "summary": f"{len(entries)} entr(ies) by {method}"}

    return run


def store_entries(deps: PipelineToolDeps) -> PipelineTool:
    """Store each knowledge entry as a memory, with the pipeline thread as provenance."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        entries: Sequence[Mapping[str, Any]] = inputs.get("entries") or []
        source = str(inputs.get("source") or "notes")
        ref = TurnRef(call.user_id, call.thread_id, agent_id=f"pipeline.{call.pipeline}")
        results = []
        for e in entries:
            said = f"remember that {e['statement']}"
            if e.get("topic"):
                said = f"remember that ({source}, {e['topic']}) {e['statement']}"
            results.append(str(await deps.memory.remember(ref, said)))
        return {"stored": len(results), "results": results, "summary": f"stored {len(results)} entr(ies)"}

    return run


def _notes_text(notes: str) -> str:
    if notes and len(notes) < 500 and "\n" not in notes:
        candidate = Path(notes).expanduser()
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8").strip()
    return notes


def read_notes(deps: PipelineToolDeps) -> PipelineTool:
    """Return notes given inline, or read them from a text file path."""

    async def run(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        notes = await asyncio.to_thread(_notes_text, str(inputs.get("notes") or "").strip())
        if not notes:
            raise StepRefused("the notes are empty")
        return {"text": notes, "words": len(notes.split()), "summary": f"{len(notes.split())} words of notes"}

    return run


PIPELINE_TOOLS: dict[str, Callable[[PipelineToolDeps], PipelineTool]] = {
    "read_issue": read_issue,
    "erp_context": erp_context,
    "scope_fix": scope_fix,
    "check_patch": check_patch,
    "write_patch": write_patch,
    "git_log": git_log,
    "project_context": project_context,
    "save_text": save_text,
    "read_notes": read_notes,
    "parse_entries": parse_entries,
    "store_entries": store_entries,
}


def build_pipeline_tools(deps: PipelineToolDeps) -> dict[str, PipelineTool]:
    """Instantiate every pipeline tool, plus any extra ones the caller supplies (tests, plugins)."""
    return {**{name: make(deps) for name, make in PIPELINE_TOOLS.items()}, **deps.extra}
