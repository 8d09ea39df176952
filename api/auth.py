"""API keys and browser sessions.

`NOVA_API_KEYS` maps each key to a user; keys are compared in constant time. The web app logs in with a key
and gets a signed session cookie instead (HttpOnly, SameSite=Strict, expiry checked by the server). A request
carrying a valid session cookie and no key is let through as that key's owner; a state-changing one must also
send the session's CSRF token in `x-csrf-token`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SESSION_COOKIE = "nova_session"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/web/login"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_@+-]{0,63}$")


class KeyConfigError(ValueError):
    """`NOVA_API_KEYS` is malformed."""


@dataclass(frozen=True)
class KeyRing:
    """The configured keys; empty means the API is open to the local default user (loopback only)."""

    keys: tuple[tuple[bytes, str], ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> KeyRing:
        """Parse `key=user,key=user`; refuse empty parts, short keys and duplicate keys."""
        pairs: list[tuple[bytes, str]] = []
        seen: set[str] = set()
        for n, part in enumerate((raw or "").split(","), start=1):
            part = part.strip()
            if not part:
                continue
            key, sep, user = part.partition("=")
            key, user = key.strip(), user.strip()
            if not sep or not key or not user:
                raise KeyConfigError(f"NOVA_API_KEYS entry {n} must look like key=user")
            if not USER_RE.match(user):
                raise KeyConfigError(
                    f"NOVA_API_KEYS entry {n}: user {user!r} must be 1-64 letters, digits or _ @ + - (no dots)"
                )
            if len(key) < 8:
                raise KeyConfigError(f"NOVA_API_KEYS entry {n} (user {user}): keys need at least 8 characters")
            if key in seen:
                raise KeyConfigError(f"NOVA_API_KEYS entry {n} (user {user}) repeats a key")
            seen.add(key)
            pairs.append((key.encode(), user))
        return cls(tuple(pairs))

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured."""
        return bool(self.keys)

    def user_for(self, presented: str) -> str | None:
        """Return the user owning a key, comparing against every key so timing reveals nothing."""
        token = presented.encode()
        found: str | None = None
        for key, user in self.keys:
            if hmac.compare_digest(key, token):
                found = user
        return found


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def caller(keyring: KeyRing, default_user: str, client_host: str | None, token: str | None) -> str | None:
    """Return the user a request acts as, or None when it may not call.

    Without API keys only loopback clients may call, as the configured user; with keys, the presented key's user.
    `api.deps.current_user` and `api.fast_path` both decide by this.
    """
    if not keyring.enabled:
        return default_user if client_host is not None and is_loopback(client_host) else None
    return keyring.user_for(token) if token else None


def is_loopback(host: str) -> bool:
    """Return True when a bind address only accepts local connections."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A verified browser session."""

    user: str
    key_id: str
    nonce: str
    expires_at: int


@dataclass(frozen=True)
class Sessions:
    """Signs and checks session cookies with a secret derived from the configured keys.

    Every worker derives the same secret, so a cookie is valid in all of them; changing `NOVA_API_KEYS`
    invalidates every session, and a session names the key it was opened with, so removing that key ends it.
    """

    keyring: KeyRing
    ttl_s: int = SESSION_TTL_S

    @property
    def _secret(self) -> bytes:
        material = b"\0".join(sorted(key + b"=" + user.encode() for key, user in self.keyring.keys))
        return hashlib.sha256(b"nova-web-session-v1\0" + material).digest()

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"\0" + data, hashlib.sha256).digest()

    def key_id(self, key: bytes) -> str:
        """Return a fingerprint of a key that reveals nothing about it."""
        return _b64(self._mac("key", key)[:12])

    def issue(self, presented: str, *, now: float | None = None) -> tuple[str, Session] | None:
        """Open a session for a valid key: return the cookie value and the session, or None."""
        user = self.keyring.user_for(presented)
        if user is None:
            return None
        session = Session(
            user=user,
            key_id=self.key_id(presented.encode()),
            nonce=secrets.token_urlsafe(16),
            expires_at=int(now if now is not None else time.time()) + self.ttl_s,
        )
        body = json.dumps(
            {"u": session.user, "k": session.key_id, "n": session.nonce, "e": session.expires_at},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(body)}.{_b64(self._mac('session', body))}", session

    def verify(self, cookie: str, *, now: float | None = None) -> Session | None:
        """Return the session a cookie carries, or None when it is forged, malformed, expired or revoked."""
        body_part, _, mac_part = cookie.partition(".")
        try:
            body, mac = _unb64(body_part), _unb64(mac_part)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            raw = json.loads(body)
            session = Session(user=str(raw["u"]), key_id=str(raw["k"]), nonce=str(raw["n"]), expires_at=int(raw["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= (now if now is not None else time.time()):
            return None
        key = self.key_for(session.key_id)
        if key is None or self.keyring.user_for(key) != session.user:
            return None
        return session

    def key_for(self, key_id: str) -> str | None:
        """Return the configured key with this fingerprint (None once it was removed)."""
        found: str | None = None
        for key, _ in self.keyring.keys:
            if hmac.compare_digest(self.key_id(key), key_id):
                found = key.decode()
        return found

    def csrf(self, session: Session) -> str:
        """Return the session's CSRF token (synchronizer token, derived from the session's nonce)."""
        return _b64(self._mac("csrf", session.nonce.encode())[:24])

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        """Return True when a presented CSRF token belongs to the session."""
        return bool(presented) and hmac.compare_digest(self.csrf(session).encode(), (presented or "").encode())


def cookie_value(header: str | None, name: str = SESSION_COOKIE) -> str | None:
    """Return one cookie from a `Cookie` header."""
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


class SessionAuth:
    """Let a request with a valid session cookie (and, unless it is safe, its CSRF token) act as its user.

    It adds the session's key as `x-api-key`, so every route authenticates it exactly like a key; requests that
    carry a key themselves are left alone, and an invalid or expired cookie is ignored (the route answers 401).
    """

    def __init__(self, app: ASGIApp, keyring: KeyRing) -> None:
        self.app = app
        self.sessions = Sessions(keyring)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate a session cookie, then pass the request on."""
        if scope["type"] != "http" or not self.sessions.keyring.enabled:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        names = {name for name, _ in headers}
        if b"x-api-key" in names or b"authorization" in names:
            await self.app(scope, receive, send)
            return
        raw = b"; ".join(value for name, value in headers if name == b"cookie").decode("latin-1")
        cookie = cookie_value(raw)
        session = self.sessions.verify(cookie) if cookie else None
        if session is None or scope["path"] == LOGIN_PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            token = next((v.decode("latin-1") for n, v in headers if n == CSRF_HEADER.encode()), None)
            if not self.sessions.csrf_ok(session, token):
                detail = f"missing or invalid CSRF token: send the session's token in {CSRF_HEADER}"
                await JSONResponse({"detail": detail, "message": detail}, status_code=403)(scope, receive, send)
                return
        key = self.sessions.key_for(session.key_id)
        assert key is not None  # verify() checked it
        scope = {**scope, "headers": [*headers, (b"x-api-key", key.encode())]}
        await self.app(scope, receive, send)
