"""Outcome types per channel, and which of them count as a response, a conversion or a negative outcome.

Channel systems and e-mail links report outcomes by type. The types each channel knows are
declared by its kind (``ChannelKind.outcome_types``; an unknown type is rejected with a
suggestion); what they *mean* for success control is configurable in ``rules/outcomes.yaml`` (optional)::

    call_center:
      response: [interested, appointment, sale]   # counts as a response
      conversion: [sale]                          # counts as a conversion (with its value)
      negative: [not_interested, wrong_number]    # a negative outcome
    email:
      response: [click]

A channel the file does not mention keeps its kind's defaults (``ChannelKind.outcome_classes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from orchestrator.errors import Problem, ValidationFailed, did_you_mean
from orchestrator.rules.kinds import OUTCOME_CLASSES, kind_names, kinds
from orchestrator.rules.yaml_source import model_problems, parse_yaml, read_text_file

OUTCOMES_FILE = "outcomes.yaml"

IMPORT_SOURCE = "import"
"""Historical results (``campaign import results``): outcome columns of the imported file, no fixed types."""

CLASSES = OUTCOME_CLASSES


def outcome_types() -> dict[str, tuple[str, ...]]:
    """Outcome types each source channel may report: every channel kind's ``outcome_types``, and ``import``."""
    return {**{kind.name: kind.outcome_types for kind in kinds()}, IMPORT_SOURCE: ()}


def default_classes() -> dict[str, dict[str, tuple[str, ...]]]:
    """Per channel kind, the outcome types of each class when ``outcomes.yaml`` does not say otherwise."""
    return {kind.name: {name: tuple(kind.outcome_classes.get(name, ())) for name in CLASSES} for kind in kinds()}


class _ChannelClasses(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    response: tuple[str, ...] | None = Field(None, description="Outcome types that count as a response.")
    conversion: tuple[str, ...] | None = Field(None, description="Outcome types that count as a conversion.")
    negative: tuple[str, ...] | None = Field(None, description="Outcome types that are a negative outcome.")


class _OutcomesBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _known_types(self) -> _OutcomesBase:
        types = outcome_types()
        for channel in type(self).model_fields:
            classes = getattr(self, channel)
            if classes is None:
                continue
            for name in CLASSES:
                for kind in getattr(classes, name) or ():
                    if kind not in types[channel]:
                        hint = did_you_mean(kind, types[channel]) or f"; {channel} reports {', '.join(types[channel])}"
                        raise ValueError(f"{channel}.{name}: unknown outcome type '{kind}'{hint}")
        return self


def outcomes_model() -> type[BaseModel]:
    """The model of ``outcomes.yaml``: one optional section per registered channel kind."""
    return _outcomes_model(kind_names())


@lru_cache(maxsize=8)
def _outcomes_model(names: tuple[str, ...]) -> type[BaseModel]:
    sections: dict[str, Any] = {name: (_ChannelClasses | None, None) for name in names}
    return create_model("OutcomesSpec", __base__=_OutcomesBase, **sections)


@dataclass(frozen=True)
class Outcomes:
    """Per channel: outcome type -> the classes it belongs to."""

    classes: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)

    def types_of(self, channel: str | None, kind: str) -> frozenset[str]:
        """The outcome types of ``channel`` that belong to class ``kind`` (response, conversion, negative)."""
        return self.classes.get(channel or "", {}).get(kind, frozenset())

    def check(self, channel: str, kind: str) -> str | None:
        """Why ``kind`` is not an outcome type of ``channel`` (with a suggestion), or ``None``."""
        types = outcome_types()
        known = types.get(channel)
        if known is None:
            return f"unknown channel '{channel}'{did_you_mean(channel, types)}"
        if kind not in known:
            suggestion = did_you_mean(kind, known) or "; known: " + ", ".join(known)
            return f"unknown outcome type '{kind}' for {channel}{suggestion}"
        return None


def load_outcomes(rules_dir: Path) -> Outcomes:
    """The defaults, overridden by ``rules_dir/outcomes.yaml`` when it exists; ``ValidationFailed`` on errors."""
    classes = {ch: {k: frozenset(v) for k, v in by_class.items()} for ch, by_class in default_classes().items()}
    path = Path(rules_dir) / OUTCOMES_FILE
    if not path.exists():
        return Outcomes(classes)
    text, problems = read_text_file(path, "outcomes file")
    spec = None
    model = outcomes_model()
    if text is not None:
        document, problems = parse_yaml(text, str(path))
        if document is not None:
            try:
                spec = model.model_validate(document.data or {})
            except ValidationError as exc:
                problems += model_problems(exc, model, document.positions)
    if problems or spec is None:
        raise ValidationFailed(problems or [Problem(str(path), None, None, "the outcomes file could not be read")])
    for channel in type(spec).model_fields:
        override = getattr(spec, channel)
        if override is None:
            continue
        for name in CLASSES:
            value = getattr(override, name)
            if value is not None:
                classes[channel][name] = frozenset(value)
    return Outcomes(classes)
