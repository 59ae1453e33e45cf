"""A validated campaign ready to run as one wave, and the builders that render its messages.

``PreparedWave`` is what ``wave.prepare`` returns: the rules file's spec, its templates (e-mail
per A/B variant, one per task channel), the merged contact policy, the wave key and the date
the wave is evaluated at. ``message_builder`` and ``task_builder`` make the renderers of a
wave's e-mails and task-channel messages; rendering a sample and sending both use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from orchestrator.delivery.messages import MessageBuilder
from orchestrator.delivery.tasks import TaskBuilder
from orchestrator.rules.kinds import channel_kind
from orchestrator.rules.kinds.email import KIND as EMAIL_KIND
from orchestrator.rules.spec import CampaignSpec
from orchestrator.settings import Settings
from orchestrator.templates.loader import TemplateSet

EMAIL = EMAIL_KIND.name  # the kind whose messages have A/B variants (``templates``)


@dataclass(frozen=True)
class PreparedWave:
    """A validated campaign ready to run as wave ``wave_key`` on date ``as_of``."""

    spec: CampaignSpec
    templates: dict[str | None, TemplateSet]  # e-mail, by variant; None = the channel's template
    policy: object | None
    wave_key: str
    as_of: date
    task_templates: dict[str, TemplateSet] = field(default_factory=dict)  # call_center, field_force, webhook

    @property
    def template(self) -> TemplateSet:
        return self.templates[None]


def message_builder(settings: Settings, prepared: PreparedWave, wave_id: int | None) -> MessageBuilder:
    return MessageBuilder(settings, prepared.spec, prepared.templates, prepared.wave_key, wave_id)


def task_builder(settings: Settings, prepared: PreparedWave, channel: str, wave_id: int | None) -> TaskBuilder:
    return TaskBuilder(
        settings, prepared.spec, channel, prepared.task_templates[channel], prepared.wave_key, wave_id, prepared.as_of
    )


def builder_for(
    settings: Settings, prepared: PreparedWave, channel: str, wave_id: int | None
) -> MessageBuilder | TaskBuilder:
    """The builder of ``channel``'s messages: per-message (journal) kinds render e-mails, batch kinds tasks."""
    if channel_kind(channel).delivery == "journal":
        return message_builder(settings, prepared, wave_id)
    return task_builder(settings, prepared, channel, wave_id)
