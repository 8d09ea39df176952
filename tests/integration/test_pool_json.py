"""The pool encodes json/jsonb with orjson: the stored values are what the stdlib encoder stored, edge cases too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg.types.json import Json, Jsonb

from api.threads import dumps


async def test_json_parameters_store_what_the_stdlib_encoder_stored(pool: Any) -> None:
    value = {"text": "café ✓ \u2028", 7: [1.5, None, True, ("a", "b")], "nested": {"big": 10**30, "neg": -(2**70)}}
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT %s::jsonb AS b, %s::json AS j", (Jsonb(value), Json(value)))
        row = await cur.fetchone()
    expected = json.loads(json.dumps(value))
    assert row["b"] == expected
    assert row["j"] == expected
    assert row["b"]["nested"]["big"] == 10**30  # read back exactly, not as a float


async def test_a_value_json_cannot_hold_is_refused_by_type_and_the_connection_stays_usable(pool: Any) -> None:
    async with pool.connection() as conn:
        with pytest.raises(TypeError, match="set"):
            await conn.execute("SELECT %s::jsonb", (Jsonb({"tags": {"a", "b"}}),))
        cur = await conn.execute("SELECT %s::jsonb AS b", (Jsonb({"ok": 1}),))
        assert (await cur.fetchone())["b"] == {"ok": 1}


def test_api_json_is_compact_utf8_and_keeps_big_integers() -> None:
    expected = '{"n":1000000000000000000000000000000,"t":"é","1":[true,null]}'
    assert dumps({"n": 10**30, "t": "é", 1: [True, None]}) == expected
