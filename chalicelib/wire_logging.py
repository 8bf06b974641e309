"""Keep botocore's wire logs away from join tokens, in the control plane and the worker alike.

At DEBUG, botocore logs whole request and response bodies: CreateAttendee responses, SendMessage and
ReceiveMessage bodies and the call records' ``job`` attribute all carry the join token. Those loggers are
held at INFO whatever the root level is.
"""

from __future__ import annotations

import logging
from typing import Final

__all__ = ["WIRE_LOGGERS", "quiet_wire_loggers"]

WIRE_LOGGERS: Final = ("botocore.endpoint", "botocore.parsers")


def quiet_wire_loggers() -> None:
    """Raise the wire loggers to INFO if anything configured them (or the root) lower."""
    for name in WIRE_LOGGERS:
        wire = logging.getLogger(name)
        if wire.getEffectiveLevel() < logging.INFO:
            wire.setLevel(logging.INFO)
