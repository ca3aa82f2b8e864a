"""The bus setting's form, checked without importing a Redis client (so that
config.py can check it and a server without --bus never loads redis-py)."""

from __future__ import annotations

from urllib.parse import urlsplit

FORM = "redis://HOST:PORT/DB"


def check_url(url: str) -> str:
    """``url`` if it names a Redis the bus can use, else ValueError saying the form."""
    parts = urlsplit(url)
    try:
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError
        parts.port  # noqa: B018 -- raises on a port that is not a number
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError
    except ValueError:
        raise ValueError(f"bus must be {FORM}, not {url!r}") from None
    return url


def where(url: str) -> str:
    """HOST:PORT of ``url``, for messages (never a password)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"
