"""The field-force kind: visits by sales reps, one visit list per rep (``channels.field_force``).

Section: ``template``, ``territory_column``, ``name_columns``, ``address_columns``,
``priority``, ``due_days``. Templates: ``brief.txt`` (required), ``title.txt``. Capacity: one
pool per territory of the reps listed in ``capacity.yaml`` (``field_force: {reps: reps.csv,
visits_per_rep_per_day: 6}``); each visit is assigned to a rep of the customer's territory.
Delivery: one visit list per rep; the endpoint ``field_force``.
"""

from __future__ import annotations

from pydantic import Field

from orchestrator.rules.kinds import ChannelKind, ColumnKey
from orchestrator.rules.sections import ColumnName, TaskChannelSpec
from orchestrator.templates.loader import ChannelLayout, Part

__all__ = ["KIND", "FieldForceChannelSpec"]


class FieldForceChannelSpec(TaskChannelSpec):
    """Visit tasks for sales reps, grouped per rep (visit lists over a signed webhook)."""

    territory_column: ColumnName = Field("territory", description="Customer column with the sales territory.")
    address_columns: tuple[ColumnName, ...] = Field((), description="Customer columns joined into the visit address.")


KIND = ChannelKind(
    name="field_force",
    spec=FieldForceChannelSpec,
    description="Visits by sales reps.",
    layout=ChannelLayout(
        parts=(
            Part("title", "title.txt", "the visit title reps see in their list", single_line=True),
            Part("brief", "brief.txt", "the visit brief"),
        ),
        required=(("brief",),),
        recommended=("title",),
    ),
    adapter="channels.field_force:FieldForceChannel",
    builder="orchestrator.delivery.tasks:visit_task",
    outcome_types=("visited", "not_met", "interested", "not_interested", "appointment", "sale"),
    outcome_classes={
        "response": ("interested", "appointment", "sale"),
        "conversion": ("sale",),
        "negative": ("not_interested",),
    },
    pool="territory",
    daily_limit=None,
    per_assignee=True,
    columns=(
        ColumnKey("territory_column", "territory"),
        ColumnKey("name_columns", (), required_by="customer_name", example="[first_name, last_name]"),
        ColumnKey("address_columns", ()),
    ),
)
