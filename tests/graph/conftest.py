"""A compiled Nova graph with fake models, checkpointed in memory or in the real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from api.db import open_pool
from api.runtime import SERDE
from api.saver import NovaSaver
from graphs.nova import build_nova_graph
from graphs.registry import Registry
from nodes.models import StaticModels
from nodes.router import Router
from nodes.services import Services


@pytest.fixture(params=["memory", "postgres"])
async def saver(request: pytest.FixtureRequest, pg_admin_url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    if request.param == "memory":
        yield InMemorySaver(serde=SERDE)
        return
    url = request.getfixturevalue("pg_url")
    async with open_pool(url) as pool:
        pg = NovaSaver(pool, serde=SERDE)
        await pg.setup()
        yield pg


@pytest.fixture()
def make_graph(registry: Registry, router: Router, saver: BaseCheckpointSaver[Any]) -> Callable[..., Any]:
    def make(model: Any, services: Services | None = None) -> Any:
        return build_nova_graph(
            registry, models=StaticModels(model), router=router, services=services or Services.null()
        ).compile(checkpointer=saver)

    return make
