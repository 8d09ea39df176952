"""The agent registry: every card file under graphs/agents, validated, or a loud error."""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from nodes.embeddings import Embedder
from nodes.router import Router, VectorCache
from state.cards import AgentCard

AGENTS_DIR = Path(__file__).parent / "agents"
ONE_CARD_ROLES = {"small_talk": "takes small talk", "review_inbox": "is the review inbox"}  # a card field each


@dataclass(frozen=True)
class CardProblem:
    """One reason a card file was refused."""

    file: Path
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


class CardError(ValueError):
    """Raised when one or more card files are invalid; lists every problem found."""

    def __init__(self, problems: list[CardProblem]) -> None:
        self.problems = problems
        super().__init__("invalid agent cards:\n" + "\n".join(f"  - {p}" for p in problems))


class Registry:
    """The loaded roster, in a stable order (sorted by id)."""

    def __init__(self, cards: Collection[AgentCard]) -> None:
        self._cards = {c.id: c for c in sorted(cards, key=lambda c: c.id)}

    @property
    def ids(self) -> tuple[str, ...]:
        """Every agent id."""
        return tuple(self._cards)

    @property
    def cards(self) -> tuple[AgentCard, ...]:
        """Every card."""
        return tuple(self._cards.values())

    def get(self, agent_id: str) -> AgentCard:
        """Return a card by id, or raise KeyError naming the known ids' domain."""
        try:
            return self._cards[agent_id]
        except KeyError:
            raise KeyError(f"unknown agent {agent_id!r}; see `nova agents list`") from None

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._cards

    def __iter__(self) -> Iterator[AgentCard]:
        return iter(self._cards.values())

    def __len__(self) -> int:
        return len(self._cards)


def load_registry(
    directory: Path = AGENTS_DIR,
    *,
    tools: Collection[str] | None = None,
    patterns: Collection[str] | None = None,
    strict_paths: bool = True,
) -> Registry:
    """Load and validate every `*.toml` card under `directory`.

    Args:
        directory: Root of the card tree (`<domain>/<name>.toml`).
        tools: Known tool names; a card naming another tool is refused. None skips the check.
        patterns: Known pattern names; likewise.
        strict_paths: Require the file path to agree with the id (`erp/query.toml` for `erp.query`).

    Raises:
        CardError: Listing every problem (file, field, reason), not just the first.
    """
    if not directory.is_dir():
        raise CardError([CardProblem(directory, "-", "card directory does not exist")])
    problems: list[CardProblem] = []
    cards: dict[str, tuple[Path, AgentCard]] = {}
    files = sorted(directory.rglob("*.toml"))
    if not files:
        problems.append(CardProblem(directory, "-", "no *.toml agent cards found"))
    for path in files:
        card = _load_card(path, problems)
        if card is None:
            continue
        if strict_paths:
            expected = f"{path.parent.name}.{path.stem}"
            if card.id != expected:
                problems.append(
                    CardProblem(path, "id", f"id {card.id!r} disagrees with its path (expected {expected!r})")
                )
        if card.id in cards:
            problems.append(CardProblem(path, "id", f"duplicate id {card.id!r}, also in {cards[card.id][0]}"))
        if tools is not None:
            for tool in dict.fromkeys((*card.tools, *card.preload)):
                if tool not in tools:
                    problems.append(
                        CardProblem(path, "tools", f"unknown tool {tool!r} (known: {', '.join(sorted(tools))})")
                    )
        if patterns is not None and card.pattern not in patterns:
            problems.append(
                CardProblem(path, "pattern", f"unknown pattern {card.pattern!r} (known: {', '.join(sorted(patterns))})")
            )
        if card.pattern == "tool_agent" and not card.tools:
            problems.append(CardProblem(path, "tools", "pattern 'tool_agent' needs at least one tool"))
        for role, says in ONE_CARD_ROLES.items():
            if getattr(card, role) and (holder := next((c for c in cards.values() if getattr(c[1], role)), None)):
                problems.append(CardProblem(path, role, f"only one card {says}; {holder[0]} does"))
        cards[card.id] = (path, card)
    if problems:
        raise CardError(problems)
    return Registry([c for _, c in cards.values()])


def _load_card(path: Path, problems: list[CardProblem]) -> AgentCard | None:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(CardProblem(path, "-", f"not valid TOML: {exc}"))
        return None
    try:
        return AgentCard.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "-"
            problems.append(CardProblem(path, where, err["msg"]))
        return None


CLARIFY_FILE = Path(__file__).parent / "routing" / "clarify.toml"


def load_clarify_examples(path: Path = CLARIFY_FILE) -> tuple[str, ...]:
    """Load the written examples of requests that deserve a clarifying question."""
    if not path.exists():
        return ()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CardError([CardProblem(path, "-", f"not valid TOML: {exc}")]) from exc
    examples = raw.get("examples")
    if not isinstance(examples, list) or not all(isinstance(e, str) and e.strip() for e in examples):
        raise CardError([CardProblem(path, "examples", "must be a list of non-empty strings")])
    return tuple(e.strip() for e in examples)


def build_router(
    registry: Registry,
    embed: Embedder,
    vectors_for: VectorCache,
    corrections: Sequence[tuple[str, str]] = (),
    *,
    clarify: bool = True,
) -> Router:
    """Fit the router on a roster, the clarify examples and any stored corrections."""
    return Router(
        registry.cards,
        embed,
        vectors_for,
        corrections=list(corrections),
        clarify_examples=load_clarify_examples() if clarify else (),
    )
