"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616: MD5 and SHA-256, qop=auth/auth-int).

Client side: pick the best challenge of a 401/407 (:func:`choose_challenge`) and answer it
(:func:`digest_authorization`). Server side, for the local Voice Connector stand-in: :func:`digest_challenge`
and :func:`verify_authorization`. Passwords never appear in reprs or error messages.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from media_worker.sip.exceptions import ParseError
from media_worker.sip.grammar import split_top_level

__all__ = [
    "ChallengeResponder",
    "DigestChallenge",
    "DigestCredentials",
    "DigestResponse",
    "choose_challenge",
    "digest_authorization",
    "digest_challenge",
    "verify_authorization",
]

# Preferred first (RFC 7616 §3.7: use the strongest algorithm offered).
_ALGORITHMS = {"SHA-256": "sha256", "SHA-256-SESS": "sha256", "MD5": "md5", "MD5-SESS": "md5"}
_PREFERENCE = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """What our caller gives us to answer challenges; ``realm`` None answers any realm."""

    username: str
    password: str = field(repr=False)
    realm: str | None = None


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One ``Digest`` challenge from WWW-Authenticate or Proxy-Authenticate."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        params = _parse_digest(value)
        try:
            realm, nonce = params["realm"], params["nonce"]
        except KeyError as missing:
            raise ParseError(f"digest challenge without {missing.args[0]}") from None
        qop = tuple(item.strip().lower() for item in params.get("qop", "").split(",") if item.strip())
        return cls(
            realm=realm,
            nonce=nonce,
            algorithm=params.get("algorithm", "MD5").upper(),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )

    def __str__(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}", f"algorithm={self.algorithm}"]
        if self.qop:
            parts.append(f'qop="{",".join(self.qop)}"')
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DigestResponse:
    """The parsed value of an Authorization or Proxy-Authorization header."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str = field(repr=False)
    algorithm: str = "MD5"
    cnonce: str | None = None
    nc: str | None = None
    qop: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> DigestResponse:
        params = _parse_digest(value)
        try:
            return cls(
                username=params["username"],
                realm=params["realm"],
                nonce=params["nonce"],
                uri=params["uri"],
                response=params["response"],
                algorithm=params.get("algorithm", "MD5").upper(),
                cnonce=params.get("cnonce"),
                nc=params.get("nc"),
                qop=params.get("qop"),
                opaque=params.get("opaque"),
            )
        except KeyError as missing:
            raise ParseError(f"digest credentials without {missing.args[0]}") from None


def choose_challenge(values: Iterable[str], credentials: DigestCredentials) -> DigestChallenge | None:
    """The strongest usable Digest challenge among header values, or None (unknown schemes are skipped)."""
    usable: list[DigestChallenge] = []
    for value in values:
        try:
            challenge = DigestChallenge.parse(value)
        except ParseError:
            continue
        if challenge.algorithm not in _ALGORITHMS:
            continue
        if challenge.qop and not {"auth", "auth-int"} & set(challenge.qop):
            continue
        if credentials.realm is not None and credentials.realm != challenge.realm:
            continue
        usable.append(challenge)
    usable.sort(key=lambda challenge: _PREFERENCE.index(challenge.algorithm))
    return usable[0] if usable else None


def digest_authorization(
    challenge: DigestChallenge,
    credentials: DigestCredentials,
    *,
    method: str,
    uri: str,
    cnonce: str,
    nc: int,
    body: bytes = b"",
) -> str:
    """The Authorization/Proxy-Authorization value answering ``challenge`` (RFC 7616 §3.4)."""
    qop = "auth" if "auth" in challenge.qop else ("auth-int" if challenge.qop else None)
    nc_text = f"{nc:08x}"
    response = _response(
        algorithm=challenge.algorithm,
        username=credentials.username,
        password=credentials.password,
        realm=challenge.realm,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        cnonce=cnonce,
        nc=nc_text,
        body=body,
    )
    parts = [
        f"username={_quote(credentials.username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f'response="{response}"',
        f"algorithm={challenge.algorithm}",
    ]
    if qop is not None:
        parts += [f"cnonce={_quote(cnonce)}", f"qop={qop}", f"nc={nc_text}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


def digest_challenge(*, realm: str, nonce: str, algorithm: str = "SHA-256", opaque: str | None = None) -> str:
    """A WWW-Authenticate value offering qop=auth (server side)."""
    return str(DigestChallenge(realm=realm, nonce=nonce, algorithm=algorithm, qop=("auth",), opaque=opaque))


def verify_authorization(
    value: str, *, method: str, password: str, realm: str, nonce: str, body: bytes = b""
) -> bool:
    """True if an Authorization value proves knowledge of ``password`` for our ``realm`` and ``nonce``."""
    try:
        answer = DigestResponse.parse(value)
    except ParseError:
        return False
    if answer.realm != realm or answer.nonce != nonce or answer.algorithm not in _ALGORITHMS:
        return False
    expected = _response(
        algorithm=answer.algorithm,
        username=answer.username,
        password=password,
        realm=realm,
        nonce=nonce,
        method=method,
        uri=answer.uri,
        qop=answer.qop,
        cnonce=answer.cnonce or "",
        nc=answer.nc or "",
        body=body,
    )
    return hmac.compare_digest(expected, answer.response.lower())


class ChallengeResponder:
    """Answers the 401/407 challenges of one call with the caller's credentials.

    A request is retried once per challenge; a second challenge is answered only when it is ``stale`` (a fresh
    nonce for the same credentials, RFC 7616 §3.3). The same nonce challenged again means the credentials are
    wrong.
    """

    __slots__ = ("_challenge", "_credentials", "_header", "_nc", "_nonces")

    _MAX_CHALLENGES = 3

    def __init__(self, credentials: DigestCredentials | None) -> None:
        self._credentials = credentials
        self._challenge: DigestChallenge | None = None
        self._header = "Authorization"
        self._nc = 0
        self._nonces: set[str] = set()

    def accept(self, status: int, challenges: Iterable[str], *, already_retried: bool) -> bool:
        """Take a challenge from a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate); True to retry."""
        if self._credentials is None or len(self._nonces) >= self._MAX_CHALLENGES:
            return False
        challenge = choose_challenge(challenges, self._credentials)
        if challenge is None or challenge.nonce in self._nonces:
            return False
        if already_retried and not challenge.stale:
            return False
        self._nonces.add(challenge.nonce)
        self._challenge = challenge
        self._header = "Proxy-Authorization" if status == 407 else "Authorization"
        self._nc = 0
        return True

    def authorization(
        self, *, method: str, uri: str, cnonce: str, body: bytes = b""
    ) -> tuple[str, str] | None:
        """The header answering the current challenge for a new request, or None before any challenge."""
        if self._challenge is None or self._credentials is None:
            return None
        self._nc += 1
        value = digest_authorization(
            self._challenge, self._credentials, method=method, uri=uri, cnonce=cnonce, nc=self._nc, body=body
        )
        return self._header, value


def _response(
    *,
    algorithm: str,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    cnonce: str,
    nc: str,
    body: bytes,
) -> str:
    name = _ALGORITHMS[algorithm]

    def digest(text: str | bytes) -> str:
        data = text.encode("utf-8") if isinstance(text, str) else text
        # MD5 is what the protocol mandates here, not our choice of hash for security.
        return hashlib.new(name, data, usedforsecurity=False).hexdigest()

    ha1 = digest(f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = digest(f"{ha1}:{nonce}:{cnonce}")
    ha2 = digest(f"{method}:{uri}:{digest(body)}" if qop == "auth-int" else f"{method}:{uri}")
    if qop is None:
        return digest(f"{ha1}:{nonce}:{ha2}")  # RFC 2069 compatibility
    return digest(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _parse_digest(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ParseError(f"not a Digest scheme: {scheme[:20]!r}")
    params: dict[str, str] = {}
    for item in split_top_level(rest, ","):
        name, equals, raw = item.strip().partition("=")
        if not equals:
            if item.strip():
                raise ParseError("digest parameter without a value")
            continue
        params[name.strip().lower()] = _unquote(raw.strip())
    return params


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        out: list[str] = []
        escaped = False
        for char in raw[1:-1]:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    return raw


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
