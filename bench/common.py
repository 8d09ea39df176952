"""Shared benchmark plumbing: result rows, percentiles, the machine description, RESULTS.md."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Row:
    """One measured line: Nova against its same-run baseline."""

    scenario: str
    nova: str
    baseline: str
    ratio: str
    target: str
    ok: bool | None

    def markdown(self) -> str:
        verdict = "n/a" if self.ok is None else ("pass" if self.ok else "FAIL")
        return f"| {self.scenario} | {self.nova} | {self.baseline} | {self.ratio} | {self.target} | {verdict} |"


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """Yield (pid, the fields of /proc/<pid>/stat after the command name) for every live process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        yield int(entry.name), fields


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load:.2f} at start"


def write_results(rows: list[Row], notes: list[str], path: Path = ROOT / "bench" / "RESULTS.md") -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}. Produced by `make bench`; each ratio is against a baseline measured in the same run.",
        "",
        "| scenario | Nova | baseline | ratio | target | pass |",
        "| --- | --- | --- | --- | --- | --- |",
        *[r.markdown() for r in rows],
        "",
        *[f"- {n}" for n in notes],
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return text


README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(results: str, readme: Path = ROOT / "README.md") -> bool:
    """Put a full run's table and notes (RESULTS.md without its title) between the README's bench markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    body = results.split("\n", 2)[2].strip()  # drop "# Benchmark results" and the blank line after it
    readme.write_text(f"{text[: start + len(README_START)]}\n{body}\n{text[end:]}", encoding="utf-8")
    return True
