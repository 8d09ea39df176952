"""Who a request acts as: api.auth.caller, shared by the routes' current_user and the turn fast path."""

from __future__ import annotations

from api.auth import KeyRing, caller

KEY = "a-long-enough-key-0001"


def test_without_keys_only_loopback_clients_call_as_the_configured_user() -> None:
    ring = KeyRing.parse("")
    assert caller(ring, "owner", "127.0.0.1", None) == "owner"
    assert caller(ring, "owner", "::1", "any-token") == "owner"
    assert caller(ring, "owner", "10.0.0.7", None) is None
    assert caller(ring, "owner", None, None) is None


def test_with_keys_the_presented_keys_user_calls_wherever_it_comes_from() -> None:
    ring = KeyRing.parse(f"{KEY}=alice")
    assert caller(ring, "owner", "10.0.0.7", KEY) == "alice"
    assert caller(ring, "owner", "127.0.0.1", None) is None
    assert caller(ring, "owner", "127.0.0.1", "wrong-key-0000000000") is None
