"""Two SipConnections back to back in memory: a caller (the worker) and a callee (the Voice Connector side).

``transfer()`` moves what one side wants to send into the other and returns the messages it carried, so a test
can assert both the events and the exact wire; ``roundtrip_until_done()`` repeats that until both sides are
quiet; ``advance()`` moves the fake clock timer by timer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from media_worker.sip import (
    KeepAlivePing,
    KeepAlivePong,
    SipConfiguration,
    SipConnection,
    SipEvent,
    SipMessage,
    SipUri,
    StreamFramer,
    chime_join_uri,
    chime_to_uri,
)

OFFER = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=sendrecv\r\n"
ANSWER = b"v=0\r\no=- 7 7 IN IP4 198.51.100.7\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\na=sendrecv\r\n"
TOKEN = "tok+en/SECRET=="
VC_HOST = "abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws"
REQUEST_URI = chime_join_uri(join_number="17035550122", host=VC_HOST, join_token=TOKEN)
TO_URI = chime_to_uri(join_number="17035550122", host=VC_HOST, join_token=TOKEN, meeting_id="m-1")
FROM_URI = SipUri.parse("sip:+12065550100@192.0.2.10")


def deterministic_urandom(seed: str) -> Callable[[int], bytes]:
    """Reproducible 'random' bytes: SHA-256 of the seed and a counter."""
    counter = 0

    def urandom(size: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < size:
            counter += 1
            out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        return out[:size]

    return urandom


def caller_config(**overrides: object) -> SipConfiguration:
    values: dict[str, object] = {
        "via_host": "192.0.2.10",
        "via_port": 40001,
        "contact": SipUri.parse("sip:+12065550100@192.0.2.10:40001;transport=tls"),
    }
    values.update(overrides)
    return SipConfiguration(**values)  # type: ignore[arg-type]  # test helper: overrides are checked at runtime


def callee_config(**overrides: object) -> SipConfiguration:
    values: dict[str, object] = {
        "via_host": VC_HOST,
        "via_port": 5061,
        "contact": SipUri.parse(f"sip:17035550122@{VC_HOST}:5061;transport=tls"),
        "user_agent": "vc-emulator",
    }
    values.update(overrides)
    return SipConfiguration(**values)  # type: ignore[arg-type]  # test helper: overrides are checked at runtime


@dataclass
class Pair:
    """A caller and a callee sharing a fake clock; ``log`` keeps every message in wire order."""

    caller: SipConnection
    callee: SipConnection
    now: float = 1000.0
    log: list[tuple[str, SipMessage]] = field(default_factory=list)

    def transfer(self, sender: SipConnection) -> list[SipMessage]:
        """Move the pending output of ``sender`` into the other side; return the messages it carried."""
        receiver = self.callee if sender is self.caller else self.caller
        data = sender.data_to_send()
        if not data:
            return []
        receiver.receive_data(data, self.now)
        messages = parse_stream(data)
        name = "caller" if sender is self.caller else "callee"
        self.log.extend((name, message) for message in messages)
        return messages

    def roundtrip_until_done(self, max_rounds: int = 10) -> None:
        """Shuttle bytes both ways until neither side has anything to send."""
        for _ in range(max_rounds):
            moved = self.transfer(self.caller) + self.transfer(self.callee)
            if not moved:
                return
        raise AssertionError(f"still talking after {max_rounds} rounds")

    def advance(self, until: float) -> None:
        """Run both sides' timers, in deadline order, up to ``until``; traffic flows after each."""
        for _ in range(1000):
            timers = [t for t in (self.caller.get_timer(), self.callee.get_timer()) if t is not None]
            if not timers or min(timers) > until:
                break
            self.now = max(self.now, min(timers))
            self.caller.handle_timer(self.now)
            self.callee.handle_timer(self.now)
            self.roundtrip_until_done()
        self.now = max(self.now, until)

    def sent_by(self, name: str) -> list[SipMessage]:
        return [message for sender, message in self.log if sender == name]


def make_pair(
    caller: dict[str, object] | None = None, callee: dict[str, object] | None = None, *, seed: str = ""
) -> Pair:
    return Pair(
        caller=SipConnection(
            configuration=caller_config(**(caller or {})), urandom=deterministic_urandom("caller" + seed)
        ),
        callee=SipConnection(
            configuration=callee_config(**(callee or {})), urandom=deterministic_urandom("callee" + seed)
        ),
    )


def parse_stream(data: bytes) -> list[SipMessage]:
    framer = StreamFramer()
    framer.feed(data)
    messages: list[SipMessage] = []
    while (item := framer.next_item()) is not None:
        if not isinstance(item, KeepAlivePing | KeepAlivePong):
            messages.append(item)
    return messages


def drain(connection: SipConnection) -> list[SipEvent]:
    events: list[SipEvent] = []
    while (event := connection.next_event()) is not None:
        events.append(event)
    return events


def lines(message: SipMessage) -> list[str]:
    """The head of a message as text lines (start line first)."""
    return bytes(message).split(b"\r\n\r\n", 1)[0].decode().split("\r\n")


def dial(pair: Pair, **options: object) -> str:
    """The caller sends an INVITE like the worker's; returns the Call-ID (nothing transferred yet)."""
    return pair.caller.invite(
        request_uri=REQUEST_URI,
        from_uri=FROM_URI,
        to=TO_URI,
        body=OFFER,
        now=pair.now,
        **options,  # type: ignore[arg-type]  # test helper: keyword options checked by invite()
    )


def establish(pair: Pair, **options: object) -> str:
    """A whole INVITE / 180 / 200 / ACK exchange; both sides' events are drained."""
    call_id = dial(pair, **options)
    pair.transfer(pair.caller)
    pair.callee.answer(call_id, 180, now=pair.now)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER)
    pair.roundtrip_until_done()
    drain(pair.caller)
    drain(pair.callee)
    return call_id
