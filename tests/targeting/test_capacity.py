"""Channel capacity files, reps, the pools of a day, task building and channel sections of rules files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from orchestrator.delivery.tasks import TaskBuilder, read_outcome_ref, task_id
from orchestrator.errors import ValidationFailed
from orchestrator.ledger import contacts as ledger
from orchestrator.ledger.contacts import ContactChunk
from orchestrator.rules.kinds import channel_kind
from orchestrator.rules.loader import validate_campaign_file
from orchestrator.targeting.capacity import UNLIMITED, day_pools, load_capacity, used_capacity
from orchestrator.targeting.frame import ContactFrame
from orchestrator.templates.loader import TemplateSet
from tests.conftest import REPO

COLUMNS = {
    "customer_id": "text",
    "first_name": "text",
    "last_name": "text",
    "email": "text",
    "phone": "text",
    "territory": "text",
    "segment": "text",
    "region": "text",
    "recency_days": "integer",
    "revenue_12m": "number",
    "consent_phone": "boolean",
    "consent_email": "boolean",
    "age": "integer",
}


def _write(folder: Path, capacity: str, reps: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "capacity.yaml").write_text(capacity)
    if reps is not None:
        (folder / "reps.csv").write_text(reps)
    return folder


def test_no_capacity_file_means_unlimited(tmp_path):
    assert load_capacity(tmp_path) is UNLIMITED
    pools = day_pools(UNLIMITED, {})
    assert pools.names == ["email", "call_center"] and pools.capacities == [None, None]


def test_capacity_file_and_reps_give_pools_with_what_is_left(tmp_path):
    rules = _write(
        tmp_path,
        "call_center:\n  tasks_per_day: 100\n"
        "field_force:\n  visits_per_rep_per_day: 5\n  reps: reps.csv\n"
        "webhook:\n  crm: {per_day: 7}\n",
        "rep_id,territory,name,visits_per_day\nR1,North,Anna,\nR2,North,Ben,2\nR3,South,,\n",
    )
    capacity = load_capacity(rules)
    used = {("call_center", None): 30, ("field_force", "R1"): 4, ("webhook", "crm"): 7}
    pools = day_pools(capacity, used, [("webhook", "crm")])
    assert dict(zip(pools.names, pools.capacities, strict=True)) == {
        "email": None,
        "call_center": 70,
        "webhook:crm": 0,
        "field_force:North": 1 + 2,
        "field_force:South": 5,
    }
    assert pools.rep_room["North"] == [("R1", 1), ("R2", 2)]


@pytest.mark.parametrize(
    ("capacity", "reps", "expected"),
    [
        (
            "call_centre:\n  tasks_per_day: 5\n",
            None,
            "capacity.yaml:1:1: unknown key 'call_centre', did you mean 'call_center'?",
        ),
        ("call_center:\n  tasks_per_day: lots\n", None, "capacity.yaml:2:18:"),
        (
            "field_force:\n  visits_per_rep_per_day: 3\n  reps: reps.csv\n",
            "rep_id,territory\nR1,North\nR1,South\n",
            "reps.csv:3: rep 'R1' is listed twice (first on line 2)",
        ),
        (
            "field_force:\n  visits_per_rep_per_day: 3\n  reps: reps.csv\n",
            "rep_id,territory,visits_per_day\nR1,North,x\n",
            "reps.csv:2: visits_per_day 'x' is not a whole number >= 0",
        ),
        (
            "field_force:\n  visits_per_rep_per_day: 3\n  reps: reps.csv\n",
            "rep,area\nR1,North\n",
            "reps.csv:1:1: the reps file needs the columns rep_id, territory; missing rep_id, territory",
        ),
    ],
)
def test_bad_capacity_files_name_file_line_and_fix(tmp_path, capacity, reps, expected):
    rules = _write(tmp_path, capacity, reps)
    with pytest.raises(ValidationFailed) as error:
        load_capacity(rules)
    text = "\n".join(str(p) for p in error.value.problems)
    assert expected in text.replace(str(tmp_path) + "/", "")


def test_used_capacity_counts_treated_pending_and_sent_of_the_day(engine):
    campaign = ledger.ensure_campaign(engine, "c", None)
    wave = ledger.open_wave(engine, campaign, "w", "0" * 64)
    day = date(2026, 11, 24)
    arms = np.array(["treatment"] * 4 + ["control"], dtype=object)
    channels = np.array(["call_center", "call_center", "field_force", "field_force", "call_center"], dtype=object)
    assignees = np.array([None, None, "R1", "R1", None], dtype=object)
    frame = ContactFrame.of(["a", "b", "c", "d", "e"], arms, channel=channels, assignee=assignees)
    ledger.record_contacts(engine, wave.id, frame, planned_for=day)
    with engine.begin() as conn:
        conn.execute(ledger.contacts.update().where(ledger.contacts.c.customer_id == "b").values(status="failed"))
    assert used_capacity(engine, day) == {("call_center", None): 1, ("field_force", "R1"): 2}
    assert used_capacity(engine, date(2026, 11, 25)) == {}


# --- rules files: channel sections ----------------------------------------------------------


def test_channel_sections_check_columns_conditions_and_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: c\ncontrol: {share: 0.1}\nchannels:\n"
        "  call_center:\n    template: t\n    phone_column: phne\n    eligible: {consent_phon: true}\n"
        "  field_force:\n    template: t\n    territory_column: territory\n    address_columns: [regio]\n    costs: 5\n"
    )
    _spec, problems = validate_campaign_file(path, columns=COLUMNS)
    messages = [f"{p.line}: {p.message}" for p in problems]
    assert messages == [
        "6: phone column 'phne' is not a column of the customer table, did you mean 'phone'?",
        "7: unknown column 'consent_phon', did you mean 'consent_phone'?",
        "8: channel field_force: every task needs a customer name; name the customer columns it is made of with "
        "'name_columns', e.g. name_columns: [first_name, last_name]",
        "11: address column 'regio' is not a column of the customer table, did you mean 'region'?",
        "12: unknown key 'costs', did you mean 'cost'?",
    ]


def test_example_rules_with_every_channel_validate():
    spec, problems = validate_campaign_file(REPO / "rules" / "retention-multichannel.yaml", columns=COLUMNS)
    assert [p for p in problems if p.severity == "error"] == []
    assert spec.channels.names() == ["email", "call_center", "field_force"]
    assert spec.priority == 10 and spec.allocation.overflow == "fallback"


# --- task building --------------------------------------------------------------------------


def test_task_builder_fills_fields_and_skips_what_cannot_become_a_task(settings):
    spec, _ = validate_campaign_file(REPO / "rules" / "retention-multichannel.yaml", columns=COLUMNS)
    row = {
        "customer_id": "C1",
        "first_name": "Anna",
        "last_name": "Weber",
        "phone": " +49 30 1234567 ",
        "segment": "gold",
        "recency_days": 200,
        "revenue_12m": 2500.0,
        "region": "North",
        "territory": "T01",
    }
    calls = TaskBuilder(
        settings,
        spec,
        "call_center",
        TemplateSet.load(REPO / "templates", "call_center", "retention", channel_kind("call_center").layout),
        "w",
        3,
        date(2026, 11, 24),
    )
    [task], skipped = calls.build(
        ContactChunk([row, {**row, "customer_id": "C2", "phone": None}], [7, 8], [None, None], ["R1", "R1"])
    )
    assert skipped[0].contact_id == 8 and skipped[0].detail == "no phone number"
    assert task.key == task_id(3, 7) == "w3-c7" and task.recipient == "+49 30 1234567"
    assert task.fields["customer_name"] == "Anna Weber" and task.fields["due_to"] == date(2026, 11, 27)
    assert read_outcome_ref(settings, task.fields["outcome_ref"]) == (3, 7)
    assert "Anna Weber" in task.parts["script"]

    visits = TaskBuilder(
        settings,
        spec,
        "field_force",
        TemplateSet.load(REPO / "templates", "field_force", "retention", channel_kind("field_force").layout),
        "w",
        3,
        date(2026, 11, 24),
    )
    nameless = {**row, "first_name": None, "last_name": " "}
    [visit], skipped = visits.build(
        ContactChunk([row, row, nameless], [7, 9, 10], [None, None, None], ["R1", None, "R1"])
    )
    assert visit.recipient == "R1" and visit.fields["address"] == "North, T01" and visit.fields["territory"] == "T01"
    # the visit list requires a name: that one customer is skipped, the batch is still sent
    assert [(s.contact_id, s.detail) for s in skipped] == [(9, "no sales rep assigned"), (10, "no customer name")]


def test_models_match_the_migrations(engine):
    """The SQLModel tables and the Alembic migrations describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import orchestrator.db.tables  # noqa: F401 - registers the tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = [d for d in compare_metadata(context, SQLModel.metadata) if not _customer_side(d)]
    assert diff == []


def _customer_side(change) -> bool:
    """Differences outside the engine tables (customer table, Alembic's own)."""
    text = repr(change)
    return "customers" in text or "alembic_version" in text or "_stage" in text
