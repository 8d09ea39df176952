"""API keys: `NOVA_API_KEYS` maps each key to a user; keys are compared in constant time."""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass

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


def is_loopback(host: str) -> bool:
    """Return True when a bind address only accepts local connections."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
