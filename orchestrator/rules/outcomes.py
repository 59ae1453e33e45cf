"""Outcome types per channel, and which of them count as a response, a conversion or a negative outcome.

Channel systems and e-mail links report outcomes by type. The types each channel knows are
fixed here (an unknown type is rejected with a suggestion); what they *mean* for success
control is configurable in ``rules/outcomes.yaml`` (optional)::

    call_center:
      response: [interested, appointment, sale]   # counts as a response
      conversion: [sale]                          # counts as a conversion (with its value)
      negative: [not_interested, wrong_number]    # a negative outcome
    email:
      response: [click]

A channel the file does not mention keeps the defaults in ``DEFAULT_CLASSES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.errors import Problem, ValidationFailed, did_you_mean
from orchestrator.rules.yaml_source import model_problems, parse_yaml, read_text_file

OUTCOMES_FILE = "outcomes.yaml"

OUTCOME_TYPES: dict[str, tuple[str, ...]] = {
    "call_center": (
        "reached",
        "no_answer",
        "busy",
        "wrong_number",
        "callback",
        "interested",
        "not_interested",
        "appointment",
        "sale",
    ),
    "field_force": ("visited", "not_met", "interested", "not_interested", "appointment", "sale"),
    "email": ("delivered", "soft_bounce", "hard_bounce", "complaint", "unsubscribe", "open", "click"),
    "webhook": ("delivered", "reached", "interested", "not_interested", "sale", "unsubscribe", "complaint"),
    "import": (),  # historical results: outcome columns of the imported file
}
"""Outcome types each source channel may report."""

CLASSES = ("response", "conversion", "negative")

DEFAULT_CLASSES: dict[str, dict[str, tuple[str, ...]]] = {
    "call_center": {
        "response": ("interested", "appointment", "sale"),
        "conversion": ("sale",),
        "negative": ("not_interested", "wrong_number"),
    },
    "field_force": {
        "response": ("interested", "appointment", "sale"),
        "conversion": ("sale",),
        "negative": ("not_interested",),
    },
    "email": {"response": ("click",), "conversion": (), "negative": ("unsubscribe", "complaint", "hard_bounce")},
    "webhook": {
        "response": ("interested", "sale"),
        "conversion": ("sale",),
        "negative": ("not_interested", "unsubscribe", "complaint"),
    },
}


class _ChannelClasses(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    response: tuple[str, ...] | None = Field(None, description="Outcome types that count as a response.")
    conversion: tuple[str, ...] | None = Field(None, description="Outcome types that count as a conversion.")
    negative: tuple[str, ...] | None = Field(None, description="Outcome types that are a negative outcome.")


class OutcomesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    call_center: _ChannelClasses | None = None
    field_force: _ChannelClasses | None = None
    email: _ChannelClasses | None = None
    webhook: _ChannelClasses | None = None

    @model_validator(mode="after")
    def _known_types(self) -> OutcomesSpec:
        for channel in ("call_center", "field_force", "email", "webhook"):
            classes = getattr(self, channel)
            if classes is None:
                continue
            for name in CLASSES:
                for kind in getattr(classes, name) or ():
                    if kind not in OUTCOME_TYPES[channel]:
                        hint = (
                            did_you_mean(kind, OUTCOME_TYPES[channel])
                            or f"; {channel} reports {', '.join(OUTCOME_TYPES[channel])}"
                        )
                        raise ValueError(f"{channel}.{name}: unknown outcome type '{kind}'{hint}")
        return self


@dataclass(frozen=True)
class Outcomes:
    """Per channel: outcome type -> the classes it belongs to."""

    classes: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)

    def types_of(self, channel: str | None, kind: str) -> frozenset[str]:
        """The outcome types of ``channel`` that belong to class ``kind`` (response, conversion, negative)."""
        return self.classes.get(channel or "", {}).get(kind, frozenset())

    def check(self, channel: str, kind: str) -> str | None:
        """Why ``kind`` is not an outcome type of ``channel`` (with a suggestion), or ``None``."""
        known = OUTCOME_TYPES.get(channel)
        if known is None:
            return f"unknown channel '{channel}'{did_you_mean(channel, OUTCOME_TYPES)}"
        if kind not in known:
            suggestion = did_you_mean(kind, known) or "; known: " + ", ".join(known)
            return f"unknown outcome type '{kind}' for {channel}{suggestion}"
        return None


def load_outcomes(rules_dir: Path) -> Outcomes:
    """The defaults, overridden by ``rules_dir/outcomes.yaml`` when it exists; ``ValidationFailed`` on errors."""
    classes = {ch: {k: frozenset(v) for k, v in kinds.items()} for ch, kinds in DEFAULT_CLASSES.items()}
    path = Path(rules_dir) / OUTCOMES_FILE
    if not path.exists():
        return Outcomes(classes)
    text, problems = read_text_file(path, "outcomes file")
    spec = None
    if text is not None:
        document, problems = parse_yaml(text, str(path))
        if document is not None:
            try:
                spec = OutcomesSpec.model_validate(document.data or {})
            except ValidationError as exc:
                problems += model_problems(exc, OutcomesSpec, document.positions)
    if problems or spec is None:
        raise ValidationFailed(problems or [Problem(str(path), None, None, "the outcomes file could not be read")])
    for channel in ("call_center", "field_force", "email", "webhook"):
        override = getattr(spec, channel)
        if override is None:
            continue
        for name in CLASSES:
            value = getattr(override, name)
            if value is not None:
                classes[channel][name] = frozenset(value)
    return Outcomes(classes)
