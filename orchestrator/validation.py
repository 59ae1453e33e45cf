"""Validation of a campaign as a whole: its rules file, its customer columns and its templates.

Used by ``campaign validate`` and before every wave, so that both report the same problems.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.customer_table import ColumnKind
from orchestrator.problems import Problem, ValidationFailed
from orchestrator.rules import validate_campaign_file
from orchestrator.settings import Settings
from orchestrator.spec import CampaignSpec
from orchestrator.templates import TemplateSet

EMAIL = "email"


def validate_campaign(
    settings: Settings, path: Path, columns: dict[str, ColumnKind] | None
) -> tuple[CampaignSpec | None, TemplateSet | None, list[Problem]]:
    """The parsed campaign, its e-mail template and every problem found in either."""
    spec, problems = validate_campaign_file(path, columns=columns)
    template = None
    if spec is not None and spec.channels.email is not None:
        try:
            template = TemplateSet.load(settings.paths.templates_dir, EMAIL, spec.channels.email.template)
        except ValidationFailed as exc:
            problems.extend(exc.problems)
        else:
            if columns is not None:
                problems.extend(template.check(columns))
    return spec, template, problems


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
