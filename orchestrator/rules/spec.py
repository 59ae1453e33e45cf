"""What a campaign rules file may say: the v1 format, as pydantic models.

A rules file is a YAML mapping under ``rules/``, one campaign per file::

    name: winback-email            # required; lower-case letters, digits, '-' and '_' (max 100)
    description: Win back lapsed gold and silver customers by e-mail.   # optional
    audience:                      # optional; omitted = every customer; see condition_parser
      all:
        - consent_email: true                 # a plain value means {eq: value}
        - email: {is_null: false}
        - recency_days: {between: [90, 365]}  # both ends included
        - segment: {in: [gold, silver]}
        - age: {gte: 18, lt: 80}              # several operators on one column: all of them
        - any:
            - region: North
            - revenue_12m: {gt: 1000}
        - not:
            segment: blocked
    control:                       # required
      share: 0.1                   # 0 <= share <= 0.9; use 0 for no control group
      salt: winback-2026           # optional; default: the campaign name
    channels:                      # required, at least one channel
      email:
        template: winback          # templates/email/winback/
        sender: "Acme Bank <offers@acme.example>"   # an address, or "Name <address>"
        reply_to: service@acme.example              # optional
        address_column: email      # optional; the customer column with the address
    scores:                        # optional: select by a model of the registry
      model: term-deposit          # a response model (probability) or an uplift model (effect)
      min_score: 0.2               # and/or top: 5000 / top_percent: 10
    variants:                      # optional A/B test within the treated group
      a: {share: 0.5}
      b: {share: 0.5, template: winback-b}
    policy:                        # optional overrides of rules/policy.yaml
      frequency_caps: [{max: 1, days: 14}]
    learning:                      # optional; without it the campaign never explores
      explore: 0.1                 # 0 <= explore <= 0.5: share of the treated given a random eligible channel
      cold_start: 0.5              # 0..1, the share while no model gives per-channel effects (default 0.5)
    schedule:                      # optional; exactly one of cron, interval_minutes, rrule
      cron: "0 9 * * MON"          # minute hour day-of-month month day-of-week
      timezone: Europe/Berlin      # IANA name; default UTC

Every key is checked: an unknown or misspelt key is an error, never ignored.

The audience condition grammar (``all``/``any``/``not``, column operators, missing
values) is described, parsed and modelled in ``condition_parser``; its public names are
re-exported here.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any as _Any
from typing import Literal

from cronsim import CronSim, CronSimError
from dateutil.rrule import rrulestr
from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import SkipJsonSchema

from orchestrator.errors import did_you_mean
from orchestrator.rules import kinds as _kinds
from orchestrator.rules.condition_parser import (
    CONDITION_TYPES as CONDITION_TYPES,
)
from orchestrator.rules.condition_parser import (
    LOGIC_KEYS as LOGIC_KEYS,
)
from orchestrator.rules.condition_parser import (
    OPERATORS as OPERATORS,
)
from orchestrator.rules.condition_parser import (
    ORDERING as ORDERING,
)
from orchestrator.rules.condition_parser import (
    All as All,
)
from orchestrator.rules.condition_parser import (
    Any as Any,
)
from orchestrator.rules.condition_parser import (
    ColumnTest as ColumnTest,
)
from orchestrator.rules.condition_parser import (
    Condition as Condition,
)
from orchestrator.rules.condition_parser import (
    Issue as Issue,
)
from orchestrator.rules.condition_parser import (
    Not as Not,
)
from orchestrator.rules.condition_parser import (
    Operator as Operator,
)
from orchestrator.rules.condition_parser import (
    Scalar as Scalar,
)
from orchestrator.rules.condition_parser import (
    condition_to_data as condition_to_data,
)
from orchestrator.rules.condition_parser import (
    parse_condition as parse_condition,
)
from orchestrator.rules.kinds.call_center import CallCenterChannelSpec as CallCenterChannelSpec
from orchestrator.rules.kinds.email import EmailChannelSpec as EmailChannelSpec
from orchestrator.rules.kinds.field_force import FieldForceChannelSpec as FieldForceChannelSpec
from orchestrator.rules.kinds.webhook import WebhookChannelSpec as WebhookChannelSpec
from orchestrator.rules.policy_spec import PolicySpec
from orchestrator.rules.sections import COLUMN as COLUMN
from orchestrator.rules.sections import SLUG as SLUG
from orchestrator.rules.sections import AudienceField as AudienceField
from orchestrator.rules.sections import ChannelSpec as ChannelSpec
from orchestrator.rules.sections import ColumnName as ColumnName
from orchestrator.rules.sections import TaskChannelSpec as TaskChannelSpec
from orchestrator.rules.sections import _ChannelSpec as _ChannelSpec
from orchestrator.rules.sections import _fail, _slug
from orchestrator.rules.sections import _Spec as _Spec

__all__ = [
    "All",
    "Any",
    "CampaignSpec",
    "ChannelsSpec",
    "ColumnTest",
    "Condition",
    "ControlSpec",
    "AllocationSpec",
    "CallCenterChannelSpec",
    "ChannelSpec",
    "TaskChannelSpec",
    "EmailChannelSpec",
    "FieldForceChannelSpec",
    "WebhookChannelSpec",
    "IdListSpec",
    "LearningSpec",
    "ScoresSpec",
    "VariantSpec",
    "Issue",
    "Not",
    "OPERATORS",
    "Operator",
    "ScheduleSpec",
    "SuccessSpec",
    "condition_to_data",
    "parse_condition",
]


class ControlSpec(_Spec):
    """The random control group: customers selected but deliberately not contacted."""

    share: float = Field(
        strict=True,
        ge=0,
        le=0.9,
        allow_inf_nan=False,
        description="Share of the selected customers held back, 0 to 0.9 (0 = none).",
    )
    salt: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Text mixed into the random split; default the campaign name. Change it to redraw the group.",
    )
    stratify_by_score: bool = Field(
        False, description="Hold out the share within every score decile (needs scores:), so both groups match."
    )
    expected_response_rate: float | None = Field(
        None, gt=0, lt=1, description="Response rate expected without the campaign, e.g. 0.05 (for the size check)."
    )
    min_detectable_lift: float | None = Field(
        None, gt=0, lt=1, description="Smallest absolute lift the campaign must be able to prove, e.g. 0.01."
    )

    @model_validator(mode="after")
    def _power_inputs_together(self) -> ControlSpec:
        if (self.expected_response_rate is None) != (self.min_detectable_lift is None):
            raise _fail(
                "give both expected_response_rate and min_detectable_lift (to check the group size), or neither"
            )
        return self


class ChannelsSpec(_Spec):
    """The channels a campaign sends on; at least one.

    One optional section per registered channel kind (``orchestrator.rules.kinds``), each
    validated by the kind's ``spec`` model; the fields follow the registry (``_sync_sections``).
    """

    @model_validator(mode="after")
    def _at_least_one(self) -> ChannelsSpec:
        if not self.names():
            raise _fail("at least one channel is required, e.g. 'email:' with template and sender")
        return self

    def names(self) -> list[str]:
        """The channels this campaign uses, in the order of preference when values tie."""
        return [name for name in _kinds.kind_names() if getattr(self, name, None) is not None]

    def items(self) -> list[tuple[str, ChannelSpec]]:
        return [(name, getattr(self, name)) for name in self.names()]

    def section(self, name: str) -> ChannelSpec:
        """The section of channel kind ``name``; ``ValueError`` when the campaign does not use it."""
        section = getattr(self, name, None)
        if section is None:
            raise ValueError(f"The campaign has no '{name}' channel; it uses {', '.join(self.names())}.")
        return section


def _sync_sections() -> None:
    """Give ``ChannelsSpec`` one optional field per registered kind, then rebuild the models holding it."""
    fields = ChannelsSpec.__pydantic_fields__
    wanted = {kind.name: kind for kind in _kinds.kinds()}
    for name in [n for n in fields if n not in wanted]:
        del fields[name]
    for name, kind in wanted.items():
        optional: _Any = kind.spec | None
        if name not in fields or fields[name].annotation != optional:
            fields[name] = FieldInfo.from_annotated_attribute(optional, Field(None, description=kind.description))
    ChannelsSpec.model_rebuild(force=True)
    campaign = globals().get("CampaignSpec")
    if campaign is not None:
        campaign.model_rebuild(force=True)


_sync_sections()
_kinds.on_change(_sync_sections)


class SuccessSpec(_Spec):
    """How success control measures the campaign (``campaign report``)."""

    goal: Literal["response", "conversion"] = Field(
        "conversion",
        description=(
            "conversion: customers who convert (imported conversions or conversion outcomes) within the window, "
            "treated and control alike; response: customers with a response outcome (only contacted ones can respond)."
        ),
    )
    window_days: int = Field(
        30, strict=True, ge=1, le=730, description="Days after the wave date a conversion is attributed to it."
    )
    product: str | None = Field(None, max_length=200, description="Count only conversions of this product.")
    value: Literal["conversions", "outcomes"] = Field(
        "conversions",
        description="Where revenue comes from: imported conversions' amounts, or the values of conversion outcomes.",
    )
    covariates: tuple[str, ...] = Field(
        (),
        max_length=20,
        description=(
            "Numeric customer columns known before the wave that predict the outcome (e.g. revenue_12m, a "
            "pre-period value of the outcome): the report adjusts the lift for them (CUPED) besides the score."
        ),
    )


class AllocationSpec(_Spec):
    """What happens to customers whose best channel is full."""

    overflow: Literal["fallback", "wait"] = Field(
        "fallback",
        description=(
            "fallback: give them their next eligible channel if that pays off; wait: keep them for a later wave."
        ),
    )


COLD_START_EXPLORE = 0.5
"""``learning.cold_start`` when a ``learning:`` section does not set it (docs/models.md shows the trade-off)."""
DEFAULT_OPTIMISM = 1.0
"""``learning.optimism`` when a ``learning:`` section does not set it (docs/models.md: the learning benchmark)."""


class LearningSpec(_Spec):
    """How the closed loop learns: exploration of channels beyond the allocated one."""

    explore: float = Field(
        0.0,
        strict=True,
        ge=0,
        le=0.5,
        allow_inf_nan=False,
        description=(
            "Share of the treated customers, 0 to 0.5 (0 = off), who get a channel drawn at random among "
            "the channels they are eligible for (within the pools' capacity), so later waves see other channels."
        ),
    )
    optimism: float = Field(
        DEFAULT_OPTIMISM,
        strict=True,
        ge=0,
        le=3,
        allow_inf_nan=False,
        description=(
            "How much benefit of the doubt, 0 to 3 (0 = none), a channel gets where the model is unsure of its "
            "effect: the allocation values it at the estimated effect plus this many spreads of the estimate "
            "(the disagreement of the model's trees), so a costly channel whose first waves left few contacts "
            "keeps getting some where it may pay, and the next model learns from them; only in pools the plain "
            "estimates leave room in."
        ),
    )
    cold_start: float = Field(
        COLD_START_EXPLORE,
        strict=True,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description=(
            "The exploration share, 0 to 1, while no model gives the campaign per-channel effects yet (its first "
            "waves): nothing is known of the channels, so exploring costs little and teaches the first model most."
        ),
    )


def _no_learning() -> LearningSpec:
    """A campaign without a ``learning:`` section does not explore at all."""
    return LearningSpec(cold_start=0.0, optimism=0.0)


class ScoresSpec(_Spec):
    """Selection by a scoring model of the registry (``campaign models train``)."""

    model: str = Field(description="Registered model name; its champion version scores the audience.")
    version: int | None = Field(
        None, strict=True, ge=1, le=2**31 - 1, description="A fixed model version instead of the champion."
    )
    min_score: float | None = Field(
        None,
        ge=-1,
        le=1,
        description=(
            "Keep customers scoring at least this; for an uplift model the predicted effect, "
            "e.g. 0 = only a positive effect."
        ),
    )
    top: int | None = Field(None, strict=True, ge=1, le=2**31 - 1, description="Keep the N best-scoring customers.")
    top_percent: float | None = Field(None, gt=0, le=100, description="Keep the best-scoring N percent.")

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return _slug("model name", value)

    @model_validator(mode="after")
    def _one_cut(self) -> ScoresSpec:
        if self.top is not None and self.top_percent is not None:
            raise _fail("give top or top_percent, not both")
        return self


class VariantSpec(_Spec):
    """One A/B variant of the treated group."""

    share: float = Field(gt=0, le=1, description="Share of the treated customers who get this variant.")
    template: str | None = Field(None, description="E-mail template of this variant; default the channel's.")

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else _slug("template name", value)


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class ScheduleSpec(_Spec):
    """When waves run: exactly one of ``cron``, ``interval_minutes`` or ``rrule``."""

    cron: str | None = Field(None, description="Cron expression, e.g. '0 9 * * MON' (09:00 every Monday).")
    interval_minutes: int | None = Field(
        None, strict=True, ge=1, le=527_040, description="Run every this many minutes (at most a year)."
    )
    rrule: str | None = Field(None, description="iCalendar RRULE, e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'.")
    timezone: str = Field("UTC", description="IANA time zone of the schedule, e.g. Europe/Berlin.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronSim(value, datetime(2000, 1, 1))
            except CronSimError as exc:
                raise _fail(
                    f"invalid cron expression '{value}': {str(exc).lower()} "
                    "(the 5 fields are minute hour day-of-month month day-of-week, e.g. '0 9 * * MON')"
                ) from exc
        return value

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                rrulestr(value, dtstart=datetime(2000, 1, 1))
            except (ValueError, TypeError) as exc:
                detail = f": {exc}" if str(exc).startswith(("invalid", "unknown")) else ""
                raise _fail(f"invalid rrule '{value}'{detail}; write it like 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value not in _time_zones():
            raise _fail(f"unknown time zone '{value}'{did_you_mean(value, _time_zones()) or ', e.g. Europe/Berlin'}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleSpec:
        given = [k for k in ("cron", "interval_minutes", "rrule") if getattr(self, k) is not None]
        if len(given) != 1:
            got = "none" if not given else " and ".join(given)
            raise _fail(f"a schedule needs exactly one of cron, interval_minutes or rrule; got {got}")
        return self


class IdListSpec(_Spec):
    """Customer ids for ``include``/``exclude``: exactly one of ``file`` or ``table`` (see ``id_lists``)."""

    file: str | None = Field(
        None, min_length=1, description="CSV or text file of customer ids, relative to the rules file."
    )
    table: str | None = Field(None, description="Database table with a customer_id column.")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is not None and not COLUMN.match(value):
            raise _fail(f"'{value}' is not a table name: use letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> IdListSpec:
        if (self.file is None) == (self.table is None):
            got = "both" if self.file is not None else "neither"
            raise _fail(f"a list needs exactly one of 'file: ids.csv' or 'table: name'; got {got}")
        return self


class CampaignSpec(_Spec):
    """One campaign rules file, validated. ``source`` and ``sha256`` identify the file."""

    name: str = Field(description="Campaign name: lower-case letters, digits, '-' and '_'.")
    description: str | None = Field(None, max_length=2000, description="What the campaign is for.")
    audience: AudienceField = None
    control: ControlSpec = Field(description="The random control group.")
    channels: ChannelsSpec = Field(description="How the campaign contacts customers.")
    schedule: ScheduleSpec | None = Field(None, description="When waves run; omitted = only when started by hand.")
    scores: ScoresSpec | None = Field(None, description="Select and order by a scoring model.")
    variants: dict[str, VariantSpec] | None = Field(None, description="A/B variants of the treated group.")
    policy: PolicySpec | None = Field(None, description="Overrides of the shared contact policy (rules/policy.yaml).")
    priority: int = Field(
        0,
        strict=True,
        ge=-1000,
        le=1000,
        description="Arbitration: when campaigns of one cycle want the same customer, the higher priority wins.",
    )
    allocation: AllocationSpec = Field(default_factory=AllocationSpec, description="Channel capacity overflow.")
    success: SuccessSpec = Field(default_factory=SuccessSpec, description="How the campaign's success is measured.")
    learning: LearningSpec = Field(default_factory=_no_learning, description="Channel exploration for learning.")
    approval: Literal["required", "none"] = Field(
        "none",
        description="required: a real wave is recorded, then sends nothing until its frozen plan (counts, rules "
        "and template digests, a sample of messages) is approved (`campaign approve` or the Prefect UI).",
    )
    source: SkipJsonSchema[Path] = Field(description="The rules file this was read from.")
    sha256: SkipJsonSchema[str] = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes.")
    include: tuple[IdListSpec, ...] = Field((), description="Only customers on one of these id lists.")
    exclude: tuple[IdListSpec, ...] = Field((), description="Never customers on any of these id lists.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _slug("name", value)

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, VariantSpec] | None) -> dict[str, VariantSpec] | None:
        if value is not None:
            if len(value) < 2:
                raise _fail("give at least two variants, e.g. a: {share: 0.5} and b: {share: 0.5}")
            for name in value:
                _slug("variant name", name)
            total = sum(v.share for v in value.values())
            if abs(total - 1) > 1e-9:
                raise _fail(f"the variant shares must add up to 1, not {total:g}")
        return value

    @model_validator(mode="after")
    def _stratify_needs_scores(self) -> CampaignSpec:
        if self.control.stratify_by_score and self.scores is None:
            raise _fail("control.stratify_by_score needs a scores: section naming the model")
        return self


FILE_FIELDS = ("source", "sha256")
"""Fields of ``CampaignSpec`` that come from the file itself, never from its content."""
