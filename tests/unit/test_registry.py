"""The registry refuses bad cards loudly, naming file, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphs.registry import CardError, load_registry

GOOD = """id = "{id}"
description = "Answers questions about {id} in a precise way."
examples = ["first example", "second example"]
pattern = "{pattern}"
tools = {tools}
"""


def write(root: Path, rel: str, agent_id: str, pattern: str = "chat", tools: str = "[]") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(GOOD.format(id=agent_id, pattern=pattern, tools=tools))
    return path


def test_loads_valid_cards_sorted(tmp_path: Path) -> None:
    write(tmp_path, "b/two.toml", "b.two")
    write(tmp_path, "a/one.toml", "a.one")
    reg = load_registry(tmp_path, tools={"x"}, patterns={"chat"})
    assert reg.ids == ("a.one", "b.two")
    assert reg.get("a.one").domain == "a"


def test_reports_every_problem_with_file_and_field(tmp_path: Path) -> None:
    write(tmp_path, "a/one.toml", "a.one")
    write(tmp_path, "a/wrong_name.toml", "a.other")
    write(tmp_path, "b/tools.toml", "b.tools", pattern="tool_agent", tools='["nope"]')
    write(tmp_path, "c/pat.toml", "c.pat", pattern="mystery")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "broken.toml").write_text("id = ")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "short.toml").write_text('id = "e.short"\ndescription = "x"\nexamples = []\n')
    with pytest.raises(CardError) as info:
        load_registry(tmp_path, tools={"memory_search"}, patterns={"chat", "tool_agent"})
    text = str(info.value)
    by_field = {(p.file.name, p.field) for p in info.value.problems}
    assert ("wrong_name.toml", "id") in by_field and "disagrees with its path" in text
    assert ("tools.toml", "tools") in by_field and "unknown tool 'nope'" in text
    assert ("pat.toml", "pattern") in by_field
    assert ("broken.toml", "-") in by_field and "not valid TOML" in text
    assert ("short.toml", "description") in by_field and ("short.toml", "examples") in by_field


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a/one.toml", "a.one")
    write(tmp_path, "x/one.toml", "a.one")
    with pytest.raises(CardError, match="duplicate id 'a.one'"):
        load_registry(tmp_path, strict_paths=False)


@pytest.mark.parametrize(
    ("role", "says", "shipped"),
    [
        ("small_talk", "only one card takes small talk", "chat.general"),  # answers "thanks"
        ("review_inbox", "only one card is the review inbox", "orchestration.reviews"),  # "show me de763530"
    ],
)
def test_only_one_card_holds_a_role(tmp_path: Path, role: str, says: str, shipped: str) -> None:
    for name in ("one", "two"):
        path = write(tmp_path, f"a/{name}.toml", f"a.{name}")
        path.write_text(path.read_text() + f"{role} = true\n")
    with pytest.raises(CardError, match=says) as info:
        load_registry(tmp_path)
    assert [(p.file.name, p.field) for p in info.value.problems] == [("two.toml", role)]
    assert getattr(load_registry().get(shipped), role)  # the shipped roster


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a/one.toml", "a.one")
    path.write_text(path.read_text() + 'colour = "blue"\n')
    with pytest.raises(CardError, match="colour"):
        load_registry(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="does not exist"):
        load_registry(tmp_path / "nothing")


def test_a_preload_tool_need_not_be_offered_to_the_model_but_must_exist(tmp_path: Path) -> None:
    path = write(tmp_path, "a/inbox.toml", "a.inbox", pattern="tool_agent", tools='["x"]')
    path.write_text(path.read_text() + 'preload = ["act", "x"]\ngrounded_by = "act"\n')
    card = load_registry(tmp_path, tools={"x", "act"}, patterns={"tool_agent"}).get("a.inbox")
    assert card.preload == ("act", "x") and card.tools == ("x",)
    with pytest.raises(CardError, match="unknown tool 'act'"):
        load_registry(tmp_path, tools={"x"}, patterns={"tool_agent"})


def test_a_card_cites_only_tools_it_has(tmp_path: Path) -> None:
    path = write(tmp_path, "a/audit.toml", "a.audit", pattern="tool_agent", tools='["x"]')
    path.write_text(path.read_text() + 'cites = ["y"]\n')
    with pytest.raises(CardError, match=r"cites names tools the card does not have: \['y'\]"):
        load_registry(tmp_path, tools={"x", "y"}, patterns={"tool_agent"})
    assert load_registry().get("erp.tenancy").cites == ("erp_tenancy",)  # the shipped roster: the audit's headline
