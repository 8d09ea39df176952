"""`make bench` keeps the README's benchmark table the one last measured."""

from __future__ import annotations

from pathlib import Path

from bench.common import README_END, README_START, Row, update_readme, write_results


def test_a_full_run_replaces_only_what_is_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Nova\n\nintro\n\n{README_START}\nold table\n{README_END}\n\n## After\n", encoding="utf-8")
    results = write_results(
        [Row("turn overhead", "6.7", "8.7", "0.78x", "<= 0.5x", False)], ["a note"], tmp_path / "RESULTS.md"
    )
    assert update_readme(results, readme)
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and "# Benchmark results" not in text
    assert "| turn overhead | 6.7 | 8.7 | 0.78x | <= 0.5x | FAIL |" in text and "- a note" in text
    assert text.startswith("# Nova\n\nintro\n\n") and text.endswith(f"{README_END}\n\n## After\n")


def test_a_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Nova\n", encoding="utf-8")
    assert not update_readme("# Benchmark results\n\nMachine: x.\n", readme)
    assert readme.read_text(encoding="utf-8") == "# Nova\n"
