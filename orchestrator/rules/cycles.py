"""Cycle files: campaigns that run together as one cycle, on one schedule (``campaign serve``).

A cycle file lies in the rules folder next to the campaigns and has a top-level ``cycle:``
instead of ``name:``::

    cycle: monday                   # the cycle's name: lower-case letters, digits, '-' and '_'
    description: Retention and win-back, arbitrated.
    campaigns: [retention-multichannel, winback-email]   # campaign names, at least two
    schedule:
      cron: "0 9 * * MON"
      timezone: Europe/Berlin

``validate_cycle_file(path)`` returns the ``CycleSpec`` (or None) and every problem at its
``file:line:col``, like a rules file. Which campaigns exist is checked where the rules folder is
read (``flows.deployments``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from orchestrator.errors import Problem
from orchestrator.rules.sections import _slug, _Spec
from orchestrator.rules.spec import ScheduleSpec
from orchestrator.rules.yaml_source import model_problems, parse_yaml, read_text_file

__all__ = ["CycleSpec", "validate_cycle_file"]


class CycleSpec(_Spec):
    """One cycle file, validated: the campaigns of one cycle and when it runs."""

    cycle: str = Field(description="Cycle name: lower-case letters, digits, '-' and '_'.")
    description: str | None = Field(None, max_length=2000, description="What the cycle is for.")
    campaigns: tuple[str, ...] = Field(
        min_length=2, max_length=50, description="Names of the campaigns that run together (at least two)."
    )
    schedule: ScheduleSpec = Field(description="When the cycle's waves run.")
    source: SkipJsonSchema[Path] = Field(description="The file this was read from.")
    sha256: SkipJsonSchema[str] = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes.")

    @field_validator("cycle")
    @classmethod
    def _name(cls, value: str) -> str:
        return _slug("cycle name", value)

    @field_validator("campaigns")
    @classmethod
    def _campaigns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            _slug("campaign name", name)
        twice = sorted({n for n in value if value.count(n) > 1})
        if twice:
            raise ValueError(f"campaign {', '.join(twice)} is listed twice; list each campaign once")
        return value


def validate_cycle_file(path: Path) -> tuple[CycleSpec | None, list[Problem]]:
    """The cycle in ``path`` (``None`` if it has any error) and every problem found."""
    text, problems = read_text_file(path, "cycle file")
    if text is None:
        return None, problems
    document, problems = parse_yaml(text, str(path))
    if document is None:
        return None, problems
    if not isinstance(document.data, dict):
        return None, [
            *problems,
            Problem(str(path), 1, 1, "a cycle file is a mapping with cycle:, campaigns:, schedule:"),
        ]
    data = {**document.data, "source": Path(path), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    try:
        spec = CycleSpec.model_validate(data)
    except ValidationError as exc:
        return None, problems + model_problems(exc, CycleSpec, document.positions)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return spec, problems
