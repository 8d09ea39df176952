"""`nova serve`: run the HTTP API under uvicorn, refusing to listen beyond loopback without API keys."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from api.auth import KeyConfigError, KeyRing, is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8123
KEEP_ALIVE_S = 30


def check_bind(host: str) -> str | None:
    """Return why the server must not start on this host, or None when it may."""
    try:
        keyring = KeyRing.parse(os.environ.get("NOVA_API_KEYS"))
    except KeyConfigError as exc:
        return str(exc)
    if not keyring.enabled and not is_loopback(host):
        return (
            f"refusing to listen on {host} without API keys: set NOVA_API_KEYS=key=user[,key=user...] "
            "or bind to 127.0.0.1"
        )
    return None


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1) -> int:
    """Serve the API until interrupted; return the process exit code."""
    problem = check_bind(host)
    if problem:
        print(f"nova serve: {problem}", file=sys.stderr)
        return 2
    if workers < 1:
        print("nova serve: --workers must be at least 1", file=sys.stderr)
        return 2
    import uvicorn

    from api.settings import get_settings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    level = get_settings().log_level.lower()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info" if level == "debug" else "warning",
        access_log=level == "debug",  # at warning it logs nothing, yet builds every line's fields
        timeout_graceful_shutdown=15,
        # Longer than clients keep idle connections (httpx: 5 s), so the client, not the server, closes an
        # idle one: a server closing it as the client reuses it fails that request with a ReadError.
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run `python -m api.serve [--host H] [--port P] [--workers N]`."""
    parser = argparse.ArgumentParser(prog="nova serve", description="Serve Nova's HTTP API.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    return serve(args.host, args.port, args.workers)


if __name__ == "__main__":
    sys.exit(main())
