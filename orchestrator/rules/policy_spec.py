"""The contact policy file: what protects customers from over-contact and contact without consent.

One shared ``rules/policy.yaml`` applies to every campaign; a campaign's rules file may
override parts of it under ``policy:`` with the same keys (``merge_policy``)::

    consent:                 # channel -> boolean customer column that must be true
      email: consent_email
      call_center: consent_phone
    suppression:             # reasons in the suppressions table that block contact
      reasons: [unsubscribed, hard_bounce, complaint, do_not_contact, erased]
    frequency_caps:          # sent contacts (and control customers' virtual ones) across ALL campaigns, by wave day
      - {max: 4, days: 30}                  # on every channel together
      - {max: 2, days: 7, channel: email}   # on one channel
    cooldown:
      complaint_days: 90     # no contact for 90 days after a complaint, blocking or not
    blocked_days:            # no wave on these days (the wave date)
      weekdays: [sun]
      dates: [2026-12-24, 2026-12-25]
    global_control:          # customers held out of every campaign
      share: 0.02
      salt: global-2026
    timezone: Europe/Berlin  # the campaign's zone for send windows (customers without a zone of their own)
    send_windows:            # channel -> when it may contact, in the customer's local time
      email: {window: "08:00-20:00"}
      call_center: {window: "09:00-18:00", days: mon-fri}
      field_force: {days: mon-fri}

Every key is optional and checked: an unknown or misspelt key is an error, never ignored.
A channel without a ``consent`` entry is not checked for consent.

``load_policy(path, columns)`` reads and validates a policy file, returning every problem at
its ``file:line:col``; ``check_policy`` checks the consent columns against the customer
table. The SQL conditions built from a policy are in ``orchestrator.targeting.policy``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from orchestrator.errors import Problem, did_you_mean
from orchestrator.rules.suppression_terms import ALL_CHANNELS, REASONS
from orchestrator.rules.yaml_source import CUSTOM_ERROR, Positions, model_problems, parse_yaml, read_text_file

if TYPE_CHECKING:  # the customer table's module loads pandas: not needed to read a policy
    from orchestrator.customers.table import ColumnKind

__all__ = [
    "ALL_CHANNELS",
    "REASONS",
    "WEEKDAYS",
    "BlockedDaysSpec",
    "CooldownSpec",
    "FrequencyCapSpec",
    "GlobalControlSpec",
    "PolicySpec",
    "SendWindowSpec",
    "SuppressionSpec",
    "check_policy",
    "load_policy",
    "merge_policy",
]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names in ``blocked_days.weekdays``, Monday first (``date.weekday()`` order)."""

_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _fail(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the campaign manager as it is."""
    return PydanticCustomError(CUSTOM_ERROR, "{message}", {"message": message})


def _channel(value: str) -> str:
    if not _CHANNEL.match(value):
        raise _fail(f"'{value}' is not a channel name; use lower-case letters, digits and '_', e.g. email")
    return value


def _column(value: str) -> str:
    if not _COLUMN.match(value):
        raise _fail(f"'{value}' is not a column name")
    return value


def _reason(value: str) -> str:
    if value not in REASONS:
        hint = did_you_mean(value, REASONS) or f"; the reasons are {', '.join(REASONS)}"
        raise _fail(f"unknown suppression reason '{value}'{hint}")
    return value


def _weekday(value: str) -> str:
    name = value.strip().lower()
    if name in WEEKDAYS:
        return name
    if name in _FULL_WEEKDAYS:
        return WEEKDAYS[_FULL_WEEKDAYS.index(name)]
    hint = did_you_mean(name, WEEKDAYS + _FULL_WEEKDAYS) or f"; use {', '.join(WEEKDAYS)}"
    raise _fail(f"unknown weekday '{value}'{hint}")


ChannelName = Annotated[str, AfterValidator(_channel)]
ColumnName = Annotated[str, AfterValidator(_column)]
Reason = Annotated[str, AfterValidator(_reason)]
Weekday = Annotated[str, AfterValidator(_weekday)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SuppressionSpec(_Spec):
    """Which entries of the suppression list block contact."""

    reasons: tuple[Reason, ...] = Field(
        REASONS, description="Suppression reasons that block contact on their channel (or every channel for '*')."
    )


class FrequencyCapSpec(_Spec):
    """At most ``max`` contacts in the ``days`` days up to the wave date, on one channel or all of them.

    Sent contacts count on their wave's day; so do the campaigns' random control customers
    ("virtual contacts"), so that caps filter treated and control customers alike.
    """

    max: int = Field(strict=True, ge=1, le=1000, description="Most contacts allowed in the window.")
    days: int = Field(strict=True, ge=1, le=3660, description="Length of the window in days, up to the wave date.")
    channel: ChannelName | None = Field(None, description="Count only this channel; omitted = every channel.")


class CooldownSpec(_Spec):
    """Days without contact after a negative signal."""

    complaint_days: int | None = Field(
        None, strict=True, ge=1, le=3660, description="Days without contact after a complaint was recorded."
    )


class BlockedDaysSpec(_Spec):
    """Wave dates on which nobody is contacted."""

    weekdays: tuple[Weekday, ...] = Field((), description="Weekdays without contact: mon, tue, ... sun.")
    dates: tuple[date, ...] = Field((), description="Dates without contact, e.g. 2026-12-25.")


class GlobalControlSpec(_Spec):
    """A fixed share of all customers held out of every campaign (salted hash of the id)."""

    share: float = Field(strict=True, ge=0, le=0.5, allow_inf_nan=False, description="Share held out, 0 to 0.5.")
    salt: str = Field(
        min_length=1, max_length=200, description="Text mixed into the hash; a new salt draws a new group."
    )


_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _window(value: str) -> str:
    match = _WINDOW.match(value)
    if not match:
        raise _fail(f"'{value}' is not a time window; write it as HH:MM-HH:MM, e.g. 08:00-20:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or (h2, m2) > (24, 0) or m2 > 59:
        raise _fail(f"'{value}' has a time that does not exist; hours 00-23 (24:00 as an end), minutes 00-59")
    if (h1, m1) >= (h2, m2):
        raise _fail(
            f"the window '{value}' ends before it starts; a window lies within one day, e.g. 08:00-20:00 "
            "(use 00:00-24:00 for the whole day)"
        )
    return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


def _days(value: object) -> tuple[str, ...]:
    """``mon-fri``, ``mon,wed,fri``, ``[mon, tue]`` or ``sat-sun`` as weekday names, Monday first."""
    if isinstance(value, str):
        items: list[str] = []
        for part in value.split(","):
            first, dash, last = part.partition("-")
            if dash:
                start, end = WEEKDAYS.index(_weekday(first)), WEEKDAYS.index(_weekday(last))
                if start > end:
                    raise _fail(f"the day range '{part.strip()}' runs backwards; write it Monday first, e.g. mon-fri")
                items += WEEKDAYS[start : end + 1]
            else:
                items.append(_weekday(first))
    elif isinstance(value, list | tuple):
        items = [_weekday(str(v)) for v in value]
    else:
        raise _fail("days are weekday names: 'mon-fri', 'mon,wed,fri' or a list such as [mon, tue]")
    if not items:
        raise _fail("'days' names no weekday; e.g. mon-fri")
    return tuple(d for d in WEEKDAYS if d in items)


def _timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(value, sorted(available_timezones())) or "; use an IANA name such as Europe/Berlin or UTC"
        raise _fail(f"unknown time zone '{value}'{hint}") from None
    return value


class SendWindowSpec(_Spec):
    """When one channel may contact: a daily time window and/or weekdays, in the customer's local time.

    A contact outside its window is not dropped: it waits (pending, with the time of its next slot)
    and is sent by the next run of the wave after that time.
    """

    window: Annotated[str, AfterValidator(_window)] | None = Field(
        None, description="Daily window HH:MM-HH:MM (local time), e.g. 08:00-20:00; omitted = the whole day."
    )
    days: Annotated[tuple[Weekday, ...], BeforeValidator(_days)] | None = Field(
        None, description="Weekdays allowed: 'mon-fri', 'mon,wed,fri' or a list; omitted = every day."
    )


class PolicySpec(_Spec):
    """The contact policy; every part optional."""

    consent: dict[ChannelName, ColumnName] = Field(
        default_factory=dict, description="Channel -> boolean customer column that must be true to contact."
    )
    suppression: SuppressionSpec = Field(default_factory=SuppressionSpec, description="Suppression list use.")
    frequency_caps: tuple[FrequencyCapSpec, ...] = Field((), description="Contact limits across all campaigns.")
    cooldown: CooldownSpec = Field(default_factory=CooldownSpec, description="Pauses after negative signals.")
    blocked_days: BlockedDaysSpec = Field(default_factory=BlockedDaysSpec, description="Days without contact.")
    global_control: GlobalControlSpec | None = Field(None, description="Customers held out of every campaign.")
    timezone: Annotated[str, AfterValidator(_timezone)] | None = Field(
        None,
        description="The campaign's time zone (IANA name, e.g. Europe/Berlin) for send windows of customers "
        "without one of their own; omitted = UTC.",
    )
    send_windows: dict[ChannelName, SendWindowSpec] = Field(
        default_factory=dict,
        description="Channel -> when it may contact, in the customer's time zone ('timezone' or 'country' column).",
    )


def merge_policy(shared: PolicySpec | None, override: PolicySpec | None) -> PolicySpec:
    """``shared`` with what ``override`` states laid over it, key by key.

    Mappings (``consent``, ``suppression``, ``cooldown``, ``blocked_days``, ``global_control``)
    merge key by key; lists (``frequency_caps``, ``reasons``, ``weekdays``, ``dates``) given in
    the override replace the shared list. Keys the override does not state are kept.
    """
    base = shared.model_dump() if shared is not None else {}
    over = override.model_dump(exclude_unset=True) if override is not None else {}
    return PolicySpec.model_validate(_deep_merge(base, over))


def _deep_merge(base: dict, over: Mapping) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- files ----------------------------------------------------------------------------------


def load_policy(
    path: Path, columns: Mapping[str, ColumnKind] | None = None, *, channels: Collection[str] | None = None
) -> tuple[PolicySpec | None, list[Problem]]:
    """The policy in ``path`` (``None`` if it has any error) and every problem found, in file order.

    ``columns`` is the customer table's ``{name: kind}``; when given, the consent columns are
    checked against it (``check_policy``; only those of ``channels`` when given). A missing file is
    an error: callers for which no policy is acceptable check that the file exists first.
    """
    file = str(path)
    text, problems = read_text_file(path, "policy file")
    if text is None:
        return None, problems
    document, problems = parse_yaml(text, file)
    policy: PolicySpec | None = None
    if document is not None:
        data, positions = document.data, document.positions
        if not isinstance(data, dict):
            keys = ", ".join(PolicySpec.model_fields)
            what = "is empty" if data is None else "is not a mapping of keys"
            problems.append(positions.problem((), f"the policy file {what}; it needs keys such as {keys}"))
        else:
            try:
                policy = PolicySpec.model_validate(data)
            except ValidationError as exc:
                problems += _model_problems(exc, positions)
            if columns is not None:
                problems += check_policy(data, columns, positions, channels=channels)
            problems += check_window_channels(data, positions)
    problems.sort(key=lambda p: (p.line or 0, p.col or 0))
    if any(p.severity == "error" for p in problems):
        policy = None
    return policy, problems


def _model_problems(error: ValidationError, positions: Positions) -> list[Problem]:
    """``model_problems``, with "did you mean" also for unknown keys of a frequency cap.

    (``yaml_source`` does not look into list items for the keys allowed there.)
    """
    problems = model_problems(error, PolicySpec, positions)
    for i, detail in enumerate(error.errors(include_url=False)):
        loc = detail["loc"]
        if detail["type"] == "extra_forbidden" and len(loc) == 3 and loc[0] == "frequency_caps":
            keys = list(FrequencyCapSpec.model_fields)
            hint = did_you_mean(str(loc[2]), keys) or f"; the keys here are: {', '.join(keys)}"
            problems[i] = positions.problem(loc, f"unknown key '{loc[2]}'{hint}", at="key")
    return problems


def check_window_channels(policy: Mapping, positions: Positions, *, loc: Sequence[str | int] = ()) -> list[Problem]:
    """Problems with the channels of ``send_windows``: each must be a channel kind (``orchestrator.rules.kinds``)."""
    from orchestrator.rules.kinds import kind_names

    windows = policy.get("send_windows")
    if not isinstance(windows, Mapping):
        return []
    known = kind_names()
    problems = []
    for channel in windows:
        if isinstance(channel, str) and _CHANNEL.match(channel) and channel not in known:
            hint = did_you_mean(channel, known) or f"; the channels are {', '.join(known)}"
            problems.append(
                positions.problem((*loc, "send_windows", channel), f"unknown channel '{channel}'{hint}", at="key")
            )
    return problems


def check_policy(
    policy: PolicySpec | Mapping,
    columns: Mapping[str, ColumnKind],
    positions: Positions | None = None,
    *,
    loc: Sequence[str | int] = (),
    channels: Collection[str] | None = None,
) -> list[Problem]:
    """Problems with the consent columns: each must exist in the customer table and be boolean.

    With ``channels`` (those a campaign uses) only their consent columns are checked: a policy
    entry for a channel the campaign does not use never stops it (e-mail only on a table
    without phone data).

    ``policy`` is a ``PolicySpec`` or the raw mapping read from YAML (then columns are checked
    even when other keys are invalid). ``positions`` and ``loc`` (where the policy mapping is
    in its file, e.g. ``("policy",)`` in a campaign rules file) place the problems.
    """
    if isinstance(policy, PolicySpec):
        consent: object = policy.consent
    else:
        consent = policy.get("consent")
    if not isinstance(consent, Mapping):
        return []
    where = positions or Positions("policy")
    problems: list[Problem] = []
    for channel, column in consent.items():
        if not isinstance(column, str) or not _COLUMN.match(column):
            continue  # reported by the model
        if channels is not None and channel not in channels:
            continue
        here = (*loc, "consent", channel)
        if column not in columns:
            hint = did_you_mean(column, columns) or ""
            problems.append(
                where.problem(
                    here, f"consent column '{column}' for {channel} is not a column of the customer table{hint}"
                )
            )
        elif columns[column] != "boolean":
            problems.append(
                where.problem(
                    here,
                    f"consent column '{column}' for {channel} holds {columns[column]} values; "
                    "it must be a true/false column",
                )
            )
    return problems
