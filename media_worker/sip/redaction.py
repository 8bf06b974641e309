"""Keep Chime join tokens out of logs, reprs and exception messages.

A join token (the ``X-chime-join-token`` URI parameter) admits anyone who holds it to a meeting, so it is
treated like a password everywhere except on the wire.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["JOIN_TOKEN_PARAM", "REDACTED", "redact_params", "redact_uri"]

JOIN_TOKEN_PARAM: Final = "x-chime-join-token"  # noqa: S105 -- a parameter name, not a credential
REDACTED: Final = "***"

# The value runs to the next URI/header delimiter; LWS around "=" is tolerated (header params allow it).
_TOKEN_VALUE = re.compile(r"(x-chime-join-token\s*=\s*)[^;,>&?\s\"]*", re.IGNORECASE)


def redact_uri(text: str) -> str:
    """Replace the value of every x-chime-join-token parameter (any case) in ``text`` with ``***``."""
    return _TOKEN_VALUE.sub(lambda match: match.group(1) + REDACTED, text)


def redact_params(params: tuple[tuple[str, str | None], ...]) -> tuple[tuple[str, str | None], ...]:
    """The same parameters with the value of any x-chime-join-token (any case) replaced by ``***``."""
    return tuple(
        (name, REDACTED if value is not None and name.lower() == JOIN_TOKEN_PARAM else value)
        for name, value in params
    )
