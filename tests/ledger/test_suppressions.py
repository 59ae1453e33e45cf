"""suppress_hard_bounces against real databases (SQLite file and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from orchestrator.db.tables import Suppression, table_of
from orchestrator.ledger.suppressions import suppress_hard_bounces
from orchestrator.rules.policy_spec import PolicySpec
from orchestrator.targeting.policy import SuppressionRow, add_suppressions, policy_filters

suppressions = table_of(Suppression)


def entries(engine: sa.Engine) -> list[tuple[str, str, str, str | None]]:
    query = sa.select(suppressions.c.customer_id, suppressions.c.channel, suppressions.c.reason, suppressions.c.source)
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(query))


def test_hard_bounces_are_suppressed_on_email(engine):
    assert suppress_hard_bounces(engine, ["c1", "c2", "c3"], source="wave 12") == 3
    assert entries(engine) == [
        ("c1", "email", "hard_bounce", "wave 12"),
        ("c2", "email", "hard_bounce", "wave 12"),
        ("c3", "email", "hard_bounce", "wave 12"),
    ]


def test_repeats_add_nothing_and_raise_nothing(engine):
    assert suppress_hard_bounces(engine, ["c1", "c2", "c1"], source="wave 1") == 2  # repeated within one call
    assert suppress_hard_bounces(engine, ["c2", "c1"], source="wave 2") == 0  # again: nothing new
    assert suppress_hard_bounces(engine, ["c3", "c2"], source="wave 2") == 1
    assert suppress_hard_bounces(engine, [], source="wave 3") == 0
    assert entries(engine) == [
        ("c1", "email", "hard_bounce", "wave 1"),  # the first source stands
        ("c2", "email", "hard_bounce", "wave 1"),
        ("c3", "email", "hard_bounce", "wave 2"),
    ]


def test_other_entries_of_the_same_customer_are_kept(engine):
    add_suppressions(engine, [SuppressionRow("c1", "unsubscribed"), SuppressionRow("c1", "complaint", "email")])
    assert suppress_hard_bounces(engine, iter(["c1"]), source="wave 5") == 1
    assert [e[:3] for e in entries(engine)] == [
        ("c1", "*", "unsubscribed"),
        ("c1", "email", "complaint"),
        ("c1", "email", "hard_bounce"),
    ]


def test_many_in_one_call(engine):
    ids = [f"c{i:05d}" for i in range(5_000)]
    assert suppress_hard_bounces(engine, ids, source="wave 7") == 5_000
    assert suppress_hard_bounces(engine, ids[::2], source="wave 8") == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(suppressions)).scalar_one() == 5_000


def test_the_policy_then_blocks_them_on_email_only(engine):
    customers = sa.Table("customers_t", sa.MetaData(), sa.Column("customer_id", sa.String(200), primary_key=True))
    customers.create(engine)
    with engine.begin() as conn:
        conn.execute(customers.insert(), [{"customer_id": c} for c in ("c1", "c2", "c3")])
    suppress_hard_bounces(engine, ["c2"], source="wave 1")
    policy = PolicySpec.model_validate({"suppression": {"reasons": ["hard_bounce"]}})

    def allowed(channel: str) -> list[str]:
        [(_name, condition)] = policy_filters(policy, channel=channel, as_of=date(2026, 1, 5), customer_table=customers)
        with engine.connect() as conn:
            return sorted(conn.execute(sa.select(customers.c.customer_id).where(condition)).scalars())

    assert allowed("email") == ["c1", "c3"]
    assert allowed("call_center") == ["c1", "c2", "c3"]


def test_source_is_required(engine):
    with pytest.raises(ValueError, match="'source' parameter of suppress_hard_bounces must say where"):
        suppress_hard_bounces(engine, ["c1"], source=" ")
