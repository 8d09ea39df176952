"""Every card file validates; the roster is exactly the 34 ids; examples don't collide across agents."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from graphs.registry import AGENTS_DIR, Registry, load_clarify_examples
from state.cards import AgentCard

ROOT = Path(__file__).resolve().parents[2]
CARD_FILES = sorted(AGENTS_DIR.rglob("*.toml"))
ROSTER_IDS = {
    "chat.general",
    "chat.memory",
    "chat.projects",
    "chat.planner",
    "chat.decisions",
    "chat.tech",
    "chat.clients",
    "erp.schema",
    "erp.tenancy",
    "erp.query",
    "erp.migrations",
    "erp.issues",
    "erp.fixes",
    "erp.api",
    "erp.domain",
    "pipeline.issue_fix",
    "pipeline.digest",
    "pipeline.client_update",
    "pipeline.release_notes",
    "pipeline.knowledge_capture",
    "pipeline.run",
    "language.summarise",
    "language.draft",
    "language.rewrite",
    "language.translate",
    "language.proofread",
    "language.extract",
    "language.blog",
    "orchestration.explain",
    "orchestration.self_improve",
    "orchestration.memory_curator",
    "orchestration.evals",
    "orchestration.reviews",
    "orchestration.health",
}
# E5 cosines are compressed: unrelated requests sit near 0.80, paraphrases of one request near 0.93-0.96, and
# the same request with a word or two swapped above 0.97. Two agents sharing such a pair leave the scorer no
# signal to separate them, so cross-agent pairs above 0.97 fail.
NEAR_DUPLICATE_COSINE = 0.97


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_card_is_complete(path: Path, registry: Registry) -> None:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    card = AgentCard.model_validate(raw)
    assert card.id == f"{path.parent.name}.{path.stem}"
    for key in (
        "description",
        "examples",
        "not_for",
        "pattern",
        "tools",
        "model_tier",
        "memory_scopes",
        "review",
        "system_prompt",
    ):
        assert key in raw, f"{path}: roster cards declare {key}"
    assert len(card.examples) >= 12
    assert len(card.system_prompt.strip()) > 40
    assert card.not_for, "roster cards name their neighbours"
    for line in card.not_for:
        named = re.findall(r"\(([a-z_]+\.[a-z_]+)\)", line)
        assert named and all(n in registry for n in named), f"{path}: not_for line must name a known agent: {line!r}"


def test_roster_is_exactly_the_34_agents(registry: Registry) -> None:
    assert set(registry.ids) == ROSTER_IDS


def test_no_near_duplicate_examples_across_agents(registry: Registry, vector_cache) -> None:  # type: ignore[no-untyped-def]
    texts, owners = [], []
    for card in registry:
        texts.extend(card.examples)
        owners.extend([card.id] * len(card.examples))
    vecs = vector_cache(texts)
    sims = vecs @ vecs.T
    owner = np.asarray(owners)
    cross = owner[:, None] != owner[None, :]
    worst = np.where(cross, sims, -1.0)
    i, j = np.unravel_index(int(np.argmax(worst)), worst.shape)
    assert worst[i, j] < NEAR_DUPLICATE_COSINE, (
        f"{owners[i]}: {texts[i]!r} ~ {owners[j]}: {texts[j]!r} ({worst[i, j]:.3f})"
    )


# Dev-set lines are held out: no card example (nor clarify example) may be the same request reworded.
DEV_HOLDOUT_COSINE = 0.95


def test_dev_set_is_disjoint_from_card_examples(registry: Registry, vector_cache) -> None:  # type: ignore[no-untyped-def]
    examples = [e for card in registry for e in (card.description, *card.examples)] + list(load_clarify_examples())
    dev = [json.loads(line)["text"] for line in (ROOT / "evals" / "routing_dev.jsonl").read_text().splitlines() if line]
    exact = {e.casefold().strip() for e in examples} & {t.casefold().strip() for t in dev}
    assert not exact, f"dev-set texts copied into examples: {sorted(exact)[:5]}"
    sims = vector_cache(dev) @ vector_cache(examples).T
    i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
    assert sims[i, j] <= DEV_HOLDOUT_COSINE, f"dev {dev[i]!r} ~ example {examples[j]!r} ({sims[i, j]:.3f})"


def test_dev_set_shape(registry: Registry) -> None:
    rows = [json.loads(line) for line in (ROOT / "evals" / "routing_dev.jsonl").read_text().splitlines() if line]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["expected"]] = counts.get(row["expected"], 0) + 1
    assert len(rows) >= 400
    assert counts.get("clarify", 0) >= 30
    assert all(counts.get(agent, 0) >= 10 for agent in registry.ids)
