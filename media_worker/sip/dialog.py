"""RFC 3261 §12 dialog state: identifiers, sequence numbers, route set, remote target; requests built from it.

A :class:`Dialog` is plain state plus pure builders; it never sends. The call layer decides when to build an
in-dialog request (§12.2.1.1) or the ACK for a 2xx (§13.2.2.4), and how to react to a bad CSeq (§12.2.2).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from media_worker.sip.exceptions import RemoteProtocolError
from media_worker.sip.message import CSeq, Headers, NameAddr, SipRequest, SipResponse
from media_worker.sip.uri import SipUri

__all__ = ["MAX_CSEQ", "Dialog", "DialogState"]

MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5


class DialogState(enum.Enum):
    """RFC 3261 §12: a dialog is early (after a 1xx with a tag) or confirmed (after a 2xx)."""

    EARLY = "early"
    CONFIRMED = "confirmed"


@dataclass(slots=True)
class Dialog:
    """The state of one dialog, seen from this UA (RFC 3261 §12.1)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_party: NameAddr
    """Our From (as UAC) or To (as UAS) value, with our tag."""
    remote_party: NameAddr
    """The peer's party with its tag."""
    remote_target: str
    """The peer's Contact URI: the Request-URI of our in-dialog requests."""
    route_set: tuple[NameAddr, ...]
    local_seq: int
    remote_seq: int | None
    is_caller: bool
    """True when we sent the dialog-creating INVITE (we own the Call-ID: RFC 3261 §14.1 glare timing)."""
    state: DialogState = DialogState.EARLY
    peer_allow: frozenset[str] = field(default_factory=frozenset)
    """Methods the peer listed in Allow (upper case); empty if it never told us."""
    peer_supported: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_uac_response(cls, request: SipRequest, response: SipResponse) -> Dialog:
        """RFC 3261 §12.1.2: the dialog our INVITE created, from a 1xx-with-tag or 2xx response."""
        remote = response.to
        if remote.tag is None:
            raise RemoteProtocolError("a dialog-creating response has no To tag")
        local = request.from_
        dialog = cls(
            call_id=request.call_id,
            local_tag=local.tag or "",
            remote_tag=remote.tag,
            local_party=local,
            remote_party=remote,
            remote_target=_contact_uri(response.headers) or request.uri,
            route_set=tuple(reversed(_route_set(response.headers))),
            local_seq=request.cseq.seq,
            remote_seq=None,
            is_caller=True,
        )
        dialog.learn_capabilities(response.headers)
        if 200 <= response.status < 300:
            dialog.state = DialogState.CONFIRMED
        return dialog

    @classmethod
    def from_uas_request(cls, request: SipRequest, *, local_tag: str, local_seq: int) -> Dialog:
        """RFC 3261 §12.1.1: the dialog a received INVITE creates once we answer it with a tag."""
        target = _contact_uri(request.headers)
        if target is None:
            raise RemoteProtocolError("INVITE without a Contact (RFC 3261 §8.1.1.8)")
        dialog = cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_party=request.to.with_tag(local_tag),
            remote_party=request.from_,
            remote_target=target,
            route_set=tuple(_route_set(request.headers)),
            local_seq=local_seq,
            remote_seq=request.cseq.seq,
            is_caller=False,
        )
        dialog.learn_capabilities(request.headers)
        return dialog

    def learn_capabilities(self, headers: Headers) -> None:
        """Remember the peer's Allow and Supported lists, when a message carries them."""
        allow = headers.get_all("Allow")
        if allow:
            self.peer_allow = frozenset(item.strip().upper() for item in allow)
        supported = headers.get_all("Supported")
        if supported:
            self.peer_supported = frozenset(item.strip().lower() for item in supported)

    def confirm(self, response: SipResponse) -> None:
        """A 2xx to our INVITE arrived: the route set is recomputed from it (§13.2.2.4)."""
        self.state = DialogState.CONFIRMED
        self.route_set = tuple(reversed(_route_set(response.headers)))
        self.refresh_target(response.headers)
        self.learn_capabilities(response.headers)

    def refresh_target(self, headers: Headers) -> None:
        """A target refresh (re-INVITE, UPDATE or their 2xx) replaces the remote target (§12.2)."""
        target = _contact_uri(headers)
        if target is not None:
            self.remote_target = target

    def matches(self, message: SipRequest | SipResponse, *, incoming_request: bool) -> bool:
        """True if the message's tags name this dialog."""
        ours, theirs = (message.to, message.from_) if incoming_request else (message.from_, message.to)
        return ours.tag == self.local_tag and theirs.tag == self.remote_tag

    def accept_remote_cseq(self, seq: int) -> bool:
        """RFC 3261 §12.2.2: a request must carry a higher CSeq than the last one; False means answer 500."""
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def next_local_seq(self) -> int:
        """RFC 3261 §12.2.1.1: each new request (not ACK or CANCEL) increments the local sequence number."""
        if self.local_seq >= MAX_CSEQ:
            raise RemoteProtocolError("the local CSeq space of this dialog is exhausted")
        self.local_seq += 1
        return self.local_seq

    def build_request(
        self,
        method: str,
        *,
        via: str,
        seq: int,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """RFC 3261 §12.2.1.1: a request in this dialog.

        ``seq`` comes from next_local_seq(), or is the INVITE's for an ACK.
        """
        request_uri, routes = self._route()
        items = [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", str(self.local_party)),
            ("To", str(self.remote_party)),
            ("Call-ID", self.call_id),
            ("CSeq", str(CSeq(seq, method))),
        ]
        items.extend(("Route", str(route)) for route in routes)
        items.extend(headers)
        if content_type is not None:
            items.append(("Content-Type", content_type))
        return SipRequest(method, request_uri, Headers(items), body)

    def request_uri(self) -> str:
        """The Request-URI of our next in-dialog request (what a digest response must cover)."""
        return self._route()[0]

    def _route(self) -> tuple[str, list[NameAddr]]:
        """Request-URI and Route headers from the route set (§12.2.1.1: loose and strict routing)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if first.uri.has_param("lr"):
            return self.remote_target, list(self.route_set)
        # Strict router: it becomes the Request-URI, and the remote target goes last in the Route set.
        request_uri = str(first.uri.without_params("method", "maddr", "ttl", "transport", "lr"))
        target = NameAddr(SipUri.parse(self.remote_target))
        return request_uri, [*self.route_set[1:], target]


def _contact_uri(headers: Headers) -> str | None:
    contacts = headers.get_all("Contact")
    if not contacts:
        return None
    return str(NameAddr.parse(contacts[0]).uri)


def _route_set(headers: Headers) -> list[NameAddr]:
    return [NameAddr.parse(value) for value in headers.get_all("Record-Route")]
