"""`nova eval ...`: wiring for the evaluations (metrics live in nodes/evaluation.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.runtime import _models_for, build_embedder, load_roster
from api.settings import Settings
from api.vectors import FileVectorCache
from graphs.registry import CardError, build_router, load_registry
from nodes.evaluation import parse_routing_cases, routing_report
from nodes.turn import rerank_with_model
from state.routing import RouteDecision


async def eval_routing(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """Route every line of a JSONL file with a router fitted on the cards alone (no stored corrections)."""
    try:
        registry = load_registry(args.cards, strict_paths=False) if args.cards else load_roster()
    except CardError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 2
    if not args.file.is_file():
        console.print(f"[red]no such file: {escape(str(args.file))}[/red]")
        return 2
    cases, problems = parse_routing_cases(args.file.read_text(encoding="utf-8").splitlines(), registry.ids)
    warn = Console(stderr=True, highlight=False)
    for problem in problems:
        warn.print(f"{args.file}: {problem}", style="yellow", markup=False)
    if not cases:
        console.print("[red]no valid lines to evaluate[/red]")
        return 2
    if args.sample and args.sample < len(cases):
        step = len(cases) / args.sample
        cases = [cases[int(i * step)] for i in range(args.sample)]
    mode = args.mode or settings.resolved_router_mode()
    embed = build_embedder(settings)
    cache = FileVectorCache(settings.home / "cache", embed)
    router = await asyncio.to_thread(build_router, registry, embed, cache, (), clarify=not args.cards)
    descriptions = {c.id: c.description for c in registry}
    decisions: list[RouteDecision] = []
    if mode == "hybrid":
        async with _models_for(settings, lambda m: console.print(f"[dim]… {escape(m)}[/dim]")) as models:
            for case in cases:
                start = time.perf_counter()
                d = router.decide(case.text)
                if d.method == "embedding":
                    d = await rerank_with_model(models, d, descriptions)
                decisions.append(d.model_copy(update={"latency_ms": (time.perf_counter() - start) * 1000}))
    else:
        for case in cases:
            decisions.append(router.decide(case.text))
    report: dict[str, Any] = routing_report(cases, decisions)
    report["mode"] = mode
    report["methods"] = dict(Counter(d.method for d in decisions))
    report["bad_lines"] = len(problems)
    if args.json:
        print(json.dumps(report))
    else:
        _print(report, console)
    return 0


def _print(report: dict[str, Any], console: Console) -> None:
    console.print(
        f"[bold]routing eval[/bold] ({report['mode']} mode, {report['n']} cases, {report['bad_lines']} bad lines)"
    )
    table = Table("metric", "value")
    for key in ("accuracy", "clarify_precision", "clarify_recall", "confident_wrong", "p50_ms", "p95_ms"):
        table.add_row(key, str(report[key]))
    console.print(table)
    dom = Table("domain", "n", "accuracy")
    for name, row in report["per_domain"].items():
        dom.add_row(name, str(int(row["n"])), f"{row['accuracy']:.3f}")
    console.print(dom)
    conf = Table("expected", "got", "count")
    for row in report["confusions"]:
        conf.add_row(row["expected"], row["got"], str(row["count"]))
    console.print(conf)
