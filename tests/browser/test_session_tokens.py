"""Session cookies and CSRF tokens of the web app, without a server or a browser."""

from __future__ import annotations

from api.auth import KeyRing, Sessions, cookie_value

RING = KeyRing.parse("alice-key-0001=alice,bob-key-0002=bob")


def test_a_session_names_its_user_and_expires() -> None:
    sessions = Sessions(RING, ttl_s=60)
    issued = sessions.issue("alice-key-0001", now=1000)
    assert issued is not None
    cookie, session = issued
    assert sessions.verify(cookie, now=1059) == session and session.user == "alice"
    assert sessions.verify(cookie, now=1060) is None
    assert sessions.issue("not-a-key", now=1000) is None


def test_forged_tampered_and_revoked_sessions_are_refused() -> None:
    sessions = Sessions(RING)
    cookie, _ = sessions.issue("bob-key-0002") or ("", None)
    body, _, mac = cookie.partition(".")
    assert sessions.verify(body + "." + mac[::-1]) is None
    assert sessions.verify("garbage") is None and sessions.verify("a.b.c") is None
    alice_cookie, _ = sessions.issue("alice-key-0001") or ("", None)
    assert sessions.verify(alice_cookie.partition(".")[0] + "." + mac) is None
    assert Sessions(KeyRing.parse("alice-key-0001=alice")).verify(cookie) is None  # bob's key was removed
    assert Sessions(KeyRing.parse("alice-key-0001=alice,bob-key-0003=bob")).verify(cookie) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    sessions = Sessions(RING)
    _, first = sessions.issue("alice-key-0001") or ("", None)
    _, second = sessions.issue("alice-key-0001") or ("", None)
    assert first is not None and second is not None
    assert sessions.csrf_ok(first, sessions.csrf(first))
    assert not sessions.csrf_ok(first, sessions.csrf(second))
    assert not sessions.csrf_ok(first, None) and not sessions.csrf_ok(first, "")


def test_cookie_header_parsing() -> None:
    assert cookie_value("a=1; nova_session=abc.def; b=2") == "abc.def"
    assert cookie_value("a=1") is None and cookie_value(None) is None and cookie_value('bad="') is None
