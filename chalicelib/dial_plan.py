"""The dial plan: which meetings get a SIP participant, and where it dials.

The plan arrives as JSON in the ``DIAL_PLAN`` environment variable (a trust boundary, so it is validated with
pydantic) and is turned into plain frozen dataclasses for use inside the control plane::

    {"rules": [{"name": "sales",
                "match": {"external_meeting_id": "sales-*", "media_regions": ["us-east-1"]},
                "targets": [{"name": "vc1", "host": "abc.voiceconnector.chime.aws",
                             "from_number": "+12065550100", "humans_gone_grace_s": 120}]}]}

Rules are tried in order and the first match wins. ``external_meeting_id`` is a case-sensitive shell-style
glob (``fnmatch``), default ``*``; ``media_regions`` absent means any region. A target is a ``DialTarget``
plus ``humans_gone_grace_s``. Validation errors name the field path, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.contract import DialTarget
from chalicelib.errors import ConfigurationError

__all__ = [
    "DEFAULT_HUMANS_GONE_GRACE_S",
    "DIAL_PLAN_VARIABLE",
    "OUR_ATTENDEE_PREFIX",
    "DialPlan",
    "InvalidDialPlan",
    "MatchedRule",
    "PlanRule",
    "PlanTarget",
    "external_user_id_for",
    "format_error_location",
    "is_our_attendee",
    "target_name_of",
]

DIAL_PLAN_VARIABLE: Final = "DIAL_PLAN"
DEFAULT_HUMANS_GONE_GRACE_S: Final = 120.0
#: Every attendee this system creates has an ExternalUserId starting with this prefix.
OUR_ATTENDEE_PREFIX: Final = "dialout#"
_MEETING_ID_CHARS: Final = 8
# ExternalUserId is 2..64 characters (chime-sdk-meetings model); prefix + 40-char target + "#" + 8 = 57.
_EXTERNAL_USER_ID_MAX: Final = 64


class InvalidDialPlan(ConfigurationError):
    """``DIAL_PLAN`` is not a valid dial plan. The message names each bad field path, never its value."""

    def __init__(self, message: str) -> None:
        super().__init__(message, variable=DIAL_PLAN_VARIABLE)


# --- wire models (trust boundary) -------------------------------------------------------------------------


class _TargetSpec(DialTarget):
    humans_gone_grace_s: float = Field(default=DEFAULT_HUMANS_GONE_GRACE_S, ge=0, le=3600)


class _MatchSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    external_meeting_id: str = Field(default="*", min_length=1, max_length=256)
    media_regions: tuple[str, ...] | None = Field(default=None, min_length=1)

    @field_validator("media_regions")
    @classmethod
    def _regions_look_like_regions(cls, regions: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for region in regions or ():
            if not (1 <= len(region) <= 32) or not all(
                c.isascii() and (c.isalnum() or c == "-") for c in region
            ):
                raise ValueError("each media region must be an AWS region name such as us-east-1")
        return regions


class _RuleSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    match: _MatchSpec = Field(default_factory=_MatchSpec)
    targets: tuple[_TargetSpec, ...] = Field(min_length=1, max_length=20)

    @field_validator("targets")
    @classmethod
    def _target_names_unique(cls, targets: tuple[_TargetSpec, ...]) -> tuple[_TargetSpec, ...]:
        # Case-insensitive because the names end up in ExternalUserId, which the service compares that way.
        seen: set[str] = set()
        for target in targets:
            folded = target.name.casefold()
            if folded in seen:
                raise ValueError("target names must be unique within a rule (case-insensitive)")
            seen.add(folded)
        return targets


class _PlanSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    rules: tuple[_RuleSpec, ...] = Field(max_length=100)


def format_error_location(loc: Sequence[int | str]) -> str:
    """``("rules", 0, "targets", 1, "from_number")`` -> ``rules[0].targets[1].from_number``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(document)"


def _describe(exc: ValidationError) -> str:
    parts = [
        f"{format_error_location(err['loc'])}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
    return "; ".join(parts)


# --- the plan used inside the control plane ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """One place to dial for a matching meeting."""

    dial_target: DialTarget
    humans_gone_grace_s: float

    @property
    def name(self) -> str:
        return self.dial_target.name


@dataclass(frozen=True, slots=True)
class PlanRule:
    name: str
    external_meeting_id_glob: str
    media_regions: frozenset[str] | None
    targets: tuple[PlanTarget, ...]

    def matches(self, external_meeting_id: str | None, media_region: str) -> bool:
        if self.media_regions is not None and media_region not in self.media_regions:
            return False
        # A meeting without an external id only matches a rule whose glob accepts the empty string ("*").
        return fnmatchcase(external_meeting_id or "", self.external_meeting_id_glob)


@dataclass(frozen=True, slots=True)
class MatchedRule:
    """The rule that matched a meeting, and its position in the plan."""

    name: str
    index: int
    targets: tuple[PlanTarget, ...]


@dataclass(frozen=True, slots=True)
class DialPlan:
    rules: tuple[PlanRule, ...]

    @classmethod
    def from_json(cls, text: str | bytes) -> DialPlan:
        """Parse ``DIAL_PLAN``; raises ``InvalidDialPlan`` naming every bad field path."""
        try:
            spec = _PlanSpec.model_validate_json(text)
        except ValidationError as exc:
            raise InvalidDialPlan(
                f"{DIAL_PLAN_VARIABLE} is not a valid dial plan: {_describe(exc)}"
            ) from None
        return cls._from_spec(spec)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DialPlan:
        """Like ``from_json`` for an already-decoded document."""
        try:
            spec = _PlanSpec.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidDialPlan(
                f"{DIAL_PLAN_VARIABLE} is not a valid dial plan: {_describe(exc)}"
            ) from None
        return cls._from_spec(spec)

    @classmethod
    def _from_spec(cls, spec: _PlanSpec) -> DialPlan:
        rules = []
        for rule in spec.rules:
            targets = tuple(
                PlanTarget(
                    dial_target=DialTarget.model_validate(t.model_dump(exclude={"humans_gone_grace_s"})),
                    humans_gone_grace_s=t.humans_gone_grace_s,
                )
                for t in rule.targets
            )
            regions = frozenset(rule.match.media_regions) if rule.match.media_regions is not None else None
            rules.append(PlanRule(rule.name, rule.match.external_meeting_id, regions, targets))
        return cls(tuple(rules))

    def match(self, external_meeting_id: str | None, media_region: str) -> MatchedRule | None:
        """The first rule matching the meeting, or None when this meeting gets no dial-out."""
        for index, rule in enumerate(self.rules):
            if rule.matches(external_meeting_id, media_region):
                return MatchedRule(name=rule.name, index=index, targets=rule.targets)
        return None


def external_user_id_for(target_name: str, meeting_id: str) -> str:
    """The ExternalUserId of our attendee for (target, meeting): ``dialout#<target>#<first 8 of meeting id>``.

    Deterministic, so a repeated CreateAttendee for the same call asks for the same identity; within the
    ExternalUserId limits (2..64 characters, no characters outside its pattern) for any valid target name.
    """
    if not target_name or not meeting_id:
        raise ValueError("target_name and meeting_id must be non-empty")
    value = f"{OUR_ATTENDEE_PREFIX}{target_name}#{meeting_id[:_MEETING_ID_CHARS]}"
    if len(value) > _EXTERNAL_USER_ID_MAX:
        raise ValueError("target name too long for an ExternalUserId (max 40 characters)")
    return value


def is_our_attendee(external_user_id: str | None) -> bool:
    """True for attendees this system created (case-insensitive: the service treats the id that way)."""
    if external_user_id is None:
        return False
    return external_user_id[: len(OUR_ATTENDEE_PREFIX)].casefold() == OUR_ATTENDEE_PREFIX


def target_name_of(external_user_id: str | None) -> str | None:
    """The target name inside one of our ExternalUserIds, or None if it is not one of ours."""
    if external_user_id is None or not is_our_attendee(external_user_id):
        return None
    name, sep, _meeting = external_user_id[len(OUR_ATTENDEE_PREFIX) :].rpartition("#")
    return name if sep and name else None
