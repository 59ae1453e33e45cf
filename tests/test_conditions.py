"""Compiled audiences run against a real customer table, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from orchestrator.conditions import compile_audience
from orchestrator.customer_table import customer_columns, customer_table
from orchestrator.spec import ColumnTest, parse_condition
from orchestrator.yaml_source import load_yaml

COLUMNS = ("customer_id", "region", "segment", "age", "revenue", "consent", "signup", "seen")
ROWS = [
    ("c1", "North", "gold", 25, 1500.0, True, date(2025, 1, 10), datetime(2025, 1, 10, 9, 0)),
    ("c2", "South", "silver", 40, 300.5, False, date(2025, 6, 1), datetime(2025, 6, 1, 12, 0)),
    ("c3", "East", "bronze", 17, 50.0, True, date(2024, 12, 31), None),
    ("c4", "West", "gold", 65, 0.0, None, None, datetime(2025, 3, 1, 8, 0)),
    ("c5", None, None, None, None, True, date(2025, 3, 15), datetime(2025, 3, 15, 23, 59)),
    ("c6", "Central", "blocked", 33, 1000.0, True, date(2025, 2, 1), datetime(2025, 2, 1, 0, 0)),
]
EVERYONE = {row[0] for row in ROWS}


@pytest.fixture
def customers(engine) -> sa.Table:
    """A small customer table, reflected back from the database as the engine does."""
    metadata = sa.MetaData()
    table = sa.Table(
        "customers",
        metadata,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("region", sa.Text),
        sa.Column("segment", sa.String(20)),
        sa.Column("age", sa.Integer),
        sa.Column("revenue", sa.Float),
        sa.Column("consent", sa.Boolean),
        sa.Column("signup", sa.Date),
        sa.Column("seen", sa.DateTime),
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [dict(zip(COLUMNS, row)) for row in ROWS])
    return customer_table(engine, "customers")


def condition_of(text: str):
    condition, issues = parse_condition(load_yaml(text, "audience.yaml").data, ())
    assert issues == []
    return condition


def selected(engine, table: sa.Table, text: str) -> set[str]:
    query = sa.select(table.c.customer_id).where(compile_audience(condition_of(text), table))
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


CASES = [
    # equality and the shorthand
    ("region: North", {"c1"}),
    ("region: {eq: North}", {"c1"}),
    ("region: null", {"c5"}),
    ("region: {is_null: true}", {"c5"}),
    ("region: {is_null: false}", EVERYONE - {"c5"}),
    ("region: {ne: North}", EVERYONE - {"c1"}),  # a missing region is not North
    ("region: {eq: north}", set()),  # text is compared exactly
    # ordering
    ("age: {lt: 25}", {"c3"}),
    ("age: {lte: 25}", {"c1", "c3"}),
    ("age: {gt: 40}", {"c4"}),
    ("age: {gte: 40}", {"c2", "c4"}),
    ("age: {lt: 17.5}", {"c3"}),
    ("age: {gte: 18, lt: 60}", {"c1", "c2", "c6"}),
    ("age: {between: [25, 40]}", {"c1", "c2", "c6"}),  # both ends included
    ("revenue: {gt: 1000}", {"c1"}),
    ("revenue: {gte: 1000}", {"c1", "c6"}),
    ("revenue: {between: [0, 300.5]}", {"c2", "c3", "c4"}),
    ("segment: {gt: c}", {"c2", "c4", "c1"}),
    # lists
    ("segment: {in: [gold, silver]}", {"c1", "c2", "c4"}),
    ("segment: {not_in: [gold, silver]}", {"c3", "c5", "c6"}),  # a missing segment is in no list
    ("age: {in: [17, 65, 99]}", {"c3", "c4"}),
    # booleans
    ("consent: true", {"c1", "c3", "c5", "c6"}),
    ("consent: false", {"c2"}),
    ("consent: {ne: true}", {"c2", "c4"}),
    ("consent: {in: [false]}", {"c2"}),
    ("consent: {is_null: true}", {"c4"}),
    # dates: YAML dates and quoted ISO text
    ("signup: {gte: 2025-01-01}", {"c1", "c2", "c5", "c6"}),
    ("signup: {lt: '2025-01-01'}", {"c3"}),
    ("signup: {between: [2025-02-01, '2025-03-15']}", {"c5", "c6"}),
    ("signup: {in: [2025-06-01, 2024-12-31]}", {"c2", "c3"}),
    ("seen: {gte: 2025-03-01}", {"c2", "c4", "c5"}),
    ("seen: {lt: '2025-03-01T08:00:01'}", {"c1", "c4", "c6"}),
    ("seen: {eq: 2025-02-01 00:00:00}", {"c6"}),
    # logic
    ("- region: {in: [North, South, East]}\n- age: {gte: 18}", {"c1", "c2"}),
    ("{region: {in: [North, South, East]}, age: {gte: 18}}", {"c1", "c2"}),
    ("all: [{consent: true}, {revenue: {gt: 100}}]", {"c1", "c6"}),
    ("any: [{region: North}, {age: {gt: 60}}]", {"c1", "c4"}),
    ("not: {region: North}", EVERYONE - {"c1"}),
    ("not: {age: {gt: 30}}", {"c1", "c3", "c5"}),  # exact complement: missing age included
    ("not: {segment: {ne: gold}}", {"c1", "c4"}),
    ("not: {not: {consent: true}}", {"c1", "c3", "c5", "c6"}),
    ("not: [{consent: true}, {age: {lt: 30}}]", EVERYONE - {"c1", "c3"}),
    (
        """\
all:
  - consent: true
  - any:
      - segment: {in: [gold, silver]}
      - revenue: {gte: 1000}
      - all:
          - region: East
          - signup: {lt: 2025-01-01}
  - not:
      segment: blocked
""",
        {"c1", "c3"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0].replace("\n", " ")[:60] for c in CASES])
def test_audience_selects(engine, customers, text, expected):
    assert selected(engine, customers, text) == expected


def test_not_is_the_exact_complement(engine, customers):
    for text, _ in CASES:
        inside = selected(engine, customers, text)
        indented = "\n".join("  " + line for line in text.splitlines())
        outside = selected(engine, customers, f"not:\n{indented}")
        assert inside | outside == EVERYONE and not inside & outside, text


def test_only_bound_parameters(engine, customers):
    condition = condition_of(
        """\
- region: {in: [Nordwest, Suedost]}
- segment: {ne: platinum}
- age: {between: [4242, 4343]}
- revenue: {gt: 17.25}
- consent: true
- signup: {gte: 2031-07-04}
- not: {seen: {lt: '2032-08-05T06:07:08'}}
"""
    )
    expression = compile_audience(condition, customers)
    compiled = expression.compile(dialect=engine.dialect)
    sql = str(compiled)
    for literal in ("Nordwest", "Suedost", "platinum", "4242", "4343", "17.25", "2031", "2032"):
        assert literal not in sql
    assert "true" not in sql.lower() and "= 1" not in sql
    values = list(compiled.params.values())
    assert ["Nordwest", "Suedost"] in values
    assert {"platinum", 4242, 4343, 17.25, True, date(2031, 7, 4), datetime(2032, 8, 5, 6, 7, 8)} <= {
        v for v in values if not isinstance(v, list)
    }
    with engine.connect() as conn:  # and it runs
        assert conn.execute(sa.select(customers.c.customer_id).where(expression)).all() == []


def test_values_never_become_sql(engine, customers):
    hostile = "North'; DROP TABLE customers; --"
    assert selected(engine, customers, f'region: "{hostile}"') == set()
    assert customer_columns(engine, "customers") is not None


def test_unknown_column_raises_with_suggestion(customers):
    with pytest.raises(ValueError, match="unknown column 'regoin' in table 'customers', did you mean 'region'"):
        compile_audience(ColumnTest("regoin", "eq", "North"), customers)


def test_unsuitable_value_raises(customers):
    with pytest.raises(ValueError, match="column 'region' holds text"):
        compile_audience(ColumnTest("region", "eq", 5), customers)


def test_reflected_columns_have_the_expected_kinds(engine, customers):
    assert customer_columns(engine, "customers") == {
        "customer_id": "text",
        "region": "text",
        "segment": "text",
        "age": "integer",
        "revenue": "number",
        "consent": "boolean",
        "signup": "date",
        "seen": "datetime",
    }
