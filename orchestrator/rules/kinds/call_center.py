"""The call-center kind: call tasks, as task lists over a signed webhook (``channels.call_center``).

Section: ``template``, ``phone_column``, ``name_columns``, ``priority``, ``due_days``.
Templates: ``script.txt`` (required), ``title.txt``. One capacity pool ``call_center``
(``capacity.yaml``: ``call_center: {tasks_per_day: N}``). Delivery: task lists; the endpoint
``call_center`` of ``settings.webhooks.endpoints``.
"""

from __future__ import annotations

from pydantic import Field

from orchestrator.rules.kinds import ChannelKind, ColumnKey
from orchestrator.rules.sections import ColumnName, TaskChannelSpec
from orchestrator.templates.loader import ChannelLayout, Part

__all__ = ["KIND", "CallCenterChannelSpec"]


class CallCenterChannelSpec(TaskChannelSpec):
    """Call tasks for the call center (task lists over a signed webhook)."""

    phone_column: ColumnName = Field("phone", description="Customer column holding the phone number.")


KIND = ChannelKind(
    name="call_center",
    spec=CallCenterChannelSpec,
    description="Call tasks for the call center.",
    layout=ChannelLayout(
        parts=(
            Part("title", "title.txt", "the task title agents see in their list", single_line=True),
            Part("script", "script.txt", "the call script"),
        ),
        required=(("script",),),
        recommended=("title",),
    ),
    adapter="channels.call_center:CallCenterChannel",
    builder="orchestrator.delivery.tasks:call_task",
    outcome_types=(
        "reached",
        "no_answer",
        "busy",
        "wrong_number",
        "callback",
        "interested",
        "not_interested",
        "appointment",
        "sale",
    ),  # fmt: skip
    outcome_classes={
        "response": ("interested", "appointment", "sale"),
        "conversion": ("sale",),
        "negative": ("not_interested", "wrong_number"),
    },
    pool="channel",
    daily_limit="tasks_per_day",
    columns=(ColumnKey("phone_column", "phone", "text"), ColumnKey("name_columns", ())),
)
