"""Compiled audiences run against a real customer table, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from orchestrator.customers.table import customer_columns
from orchestrator.rules.conditions import compile_audience
from orchestrator.rules.spec import ColumnTest, parse_condition
from orchestrator.rules.yaml_source import load_yaml

COLUMNS = ("customer_id", "region", "segment", "age", "revenue", "consent", "signup", "seen", "note")
ROWS = [
    ("c1", "North", "gold", 25, 1500.0, True, date(2025, 1, 10), datetime(2025, 1, 10, 9, 0), "VIP 50% OFF"),
    ("c2", "South", "silver", 40, 300.5, False, date(2025, 6, 1), datetime(2025, 6, 1, 12, 0), "vip_2025"),
    ("c3", "East", "bronze", 17, 50.0, True, date(2024, 12, 31), None, "vipx2025"),
    ("c4", "West", "gold", 65, 0.0, None, None, datetime(2025, 3, 1, 8, 0), "Gold member"),
    ("c5", None, None, None, None, True, date(2025, 3, 15), datetime(2025, 3, 15, 23, 59), None),
    ("c6", "Central", "blocked", 33, 1000.0, True, date(2025, 2, 1), datetime(2025, 2, 1, 0, 0), "no\\vip"),
]
AS_OF = date(2025, 7, 1)  # days ago of signup: c1 172, c2 30, c3 182, c5 108, c6 150; of seen: c4 122
EVERYONE = {row[0] for row in ROWS}


@pytest.fixture
def customers(make_customer_table) -> sa.Table:
    """A small customer table, reflected back from the database as the engine does."""
    return make_customer_table(
        [
            sa.Column("customer_id", sa.Text, primary_key=True),
            sa.Column("region", sa.Text),
            sa.Column("segment", sa.String(20)),
            sa.Column("age", sa.Integer),
            sa.Column("revenue", sa.Float),
            sa.Column("consent", sa.Boolean),
            sa.Column("signup", sa.Date),
            sa.Column("seen", sa.DateTime),
            sa.Column("note", sa.Text),
        ],
        [dict(zip(COLUMNS, row, strict=True)) for row in ROWS],
    )


def condition_of(text: str):
    condition, issues = parse_condition(load_yaml(text, "audience.yaml").data, ())
    assert issues == []
    return condition


def selected(engine, table: sa.Table, text: str, **kwargs) -> set[str]:
    query = sa.select(table.c.customer_id).where(compile_audience(condition_of(text), table, **kwargs))
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
    # text matching, ignoring case; % _ and \\ are plain characters in contains/starts_with/ends_with
    ("note: {contains: vip}", {"c1", "c2", "c3", "c6"}),
    ("note: {contains: '%'}", {"c1"}),
    ("note: {contains: 'p_2'}", {"c2"}),
    ("note: {contains: '\\'}", {"c6"}),
    ("note: {starts_with: vip}", {"c1", "c2", "c3"}),
    ("note: {starts_with: VIP_}", {"c2"}),
    ("note: {ends_with: '2025'}", {"c2", "c3"}),
    ("note: {ends_with: off}", {"c1"}),
    ("note: {like: 'vip_2025'}", {"c2", "c3"}),
    ("note: {like: '%MEMBER'}", {"c4"}),
    ("note: {like: 'vip\\_%'}", {"c2"}),
    ("note: {matches: '^vip.?2025$'}", {"c2", "c3"}),
    ("note: {matches: '[0-9]{2}%'}", {"c1"}),
    ("note: {matches: '\\d{4}'}", {"c2", "c3"}),
    ("note: {matches: 'gold|off'}", {"c1", "c4"}),
    ("note: {matches: '\\\\'}", {"c6"}),
    ("{note: {contains: vip}, region: {ne: North}}", {"c2", "c3", "c6"}),
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


DATE_CASES = [
    # days_ago: whole days from the column's day to the wave date (AS_OF)
    ("signup: {days_ago: {gte: 150}}", {"c1", "c3", "c6"}),
    ("signup: {days_ago: {gt: 150}}", {"c1", "c3"}),
    ("signup: {days_ago: {lte: 108}}", {"c2", "c5"}),
    ("signup: {days_ago: {lt: 108}}", {"c2"}),
    ("signup: {days_ago: {eq: 30}}", {"c2"}),
    ("signup: {days_ago: {between: [100, 160]}}", {"c5", "c6"}),
    ("signup: {days_ago: {gte: 100, lt: 172}}", {"c5", "c6"}),
    ("seen: {days_ago: {gte: 150}}", {"c1", "c6"}),
    ("seen: {days_ago: {eq: 108}}", {"c5"}),  # 2025-03-15 23:59 is on day 108
    ("seen: {days_ago: {lte: 108}}", {"c2", "c5"}),
    ("seen: {days_ago: {lt: 108}}", {"c2"}),
    ("seen: {days_ago: {between: [108, 122]}}", {"c4", "c5"}),
    # before/after a day: a date, or relative to the wave date
    ("signup: {before: 2025-01-10}", {"c3"}),
    ("signup: {after: '2025-03-15'}", {"c2"}),
    ("signup: {before: -150d}", {"c1", "c3"}),
    ("signup: {after: -30d}", set()),
    ("signup: {after: -31d}", {"c2"}),
    ("signup: {before: today}", {"c1", "c2", "c3", "c5", "c6"}),
    ("signup: {after: +0d}", set()),
    ("signup: {after: 2025-01-01, before: -100d}", {"c1", "c5", "c6"}),
    ("seen: {before: 2025-03-15}", {"c1", "c4", "c6"}),
    ("seen: {after: 2025-03-01}", {"c2", "c5"}),
    ("seen: {after: -122d}", {"c2", "c5"}),
    ("any: [{seen: {days_ago: {lt: 31}}}, {signup: {before: 2025-01-01}}]", {"c2", "c3"}),
]


@pytest.mark.parametrize(("text", "expected"), DATE_CASES, ids=[c[0][:60] for c in DATE_CASES])
def test_dates_relative_to_the_wave_date(engine, customers, text, expected):
    assert selected(engine, customers, text, as_of=AS_OF) == expected


def test_the_wave_date_defaults_to_today(engine, customers):
    today = date.today()
    with engine.begin() as conn:
        conn.execute(customers.update().where(customers.c.customer_id == "c1").values(signup=today))
    assert selected(engine, customers, "signup: {days_ago: {eq: 0}}") == {"c1"}
    assert selected(engine, customers, "signup: {days_ago: {eq: 0}}", as_of=datetime.now()) == {"c1"}
    assert selected(engine, customers, "signup: {days_ago: {eq: 1}}", as_of=today + timedelta(days=1)) == {"c1"}


def test_not_is_the_exact_complement(engine, customers):
    for text, _ in CASES + DATE_CASES:
        inside = selected(engine, customers, text, as_of=AS_OF)
        indented = "\n".join("  " + line for line in text.splitlines())
        outside = selected(engine, customers, f"not:\n{indented}", as_of=AS_OF)
        assert inside | outside == EVERYONE and not inside & outside, text


def test_text_and_date_values_are_bound_parameters(engine, customers):
    condition = condition_of(
        """- note: {contains: Zebra42}
- note: {like: 'Quux%'}
- note: {matches: 'Wombat[0-9]'}
- signup: {days_ago: {gte: 4242}}
- seen: {before: -4343d}
"""
    )
    compiled = compile_audience(condition, customers, as_of=date(2031, 7, 4)).compile(dialect=engine.dialect)
    sql = str(compiled)
    for literal in ("zebra42", "Zebra42", "quux", "Wombat", "4242", "4343", "2031", "2019", "2020"):
        assert literal not in sql
    values = set(map(str, compiled.params.values()))
    assert {"%zebra42%", "quux%", "Wombat[0-9]", "2019-11-22", "2019-08-13 00:00:00"} <= values


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


@pytest.mark.parametrize(
    ("test", "message"),
    [
        (ColumnTest("age", "contains", "1"), "column 'age' holds numbers; 'contains' only applies to text columns"),
        (ColumnTest("note", "before", "today"), "column 'note' holds text; 'before' only applies to date columns"),
        (
            ColumnTest("consent", "gte", 3, measure="days_ago"),
            "column 'consent' holds true/false; 'days_ago' only applies to date columns",
        ),
    ],
)
def test_operator_on_the_wrong_kind_of_column_raises(customers, test, message):
    with pytest.raises(ValueError, match=message):
        compile_audience(test, customers)


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
        "note": "text",
    }


# --- long in lists: one bound parameter, not one per value ---------------------------------------


def _selected_by(engine, table: sa.Table, condition) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(table.c.customer_id).where(compile_audience(condition, table))).scalars())


@pytest.mark.parametrize("kind", ["text", "integer", "number", "date", "boolean"])
def test_in_lists_of_50001_values_select_as_short_ones_do(engine, customers, kind):
    """50,001 values: more parameters than SQLite takes in one statement, so they travel as one."""
    column, hits, filler = {
        "text": ("customer_id", ["c1", "c4"], [f"x{i}" for i in range(50_000)]),
        "integer": ("age", [25, 65], [1000 + i for i in range(50_000)]),
        "number": ("revenue", [1500.0, 0.0], [2000.5 + i for i in range(50_000)]),
        "date": (
            "signup",
            ["2025-01-10", "2025-06-01"],
            [str(date(1700, 1, 1) + timedelta(days=i)) for i in range(50_000)],
        ),
        "boolean": ("consent", [True], [True] * 50_000),
    }[kind]
    values = (*filler[:25_000], *hits, *filler[25_000:])
    for op in ("in", "not_in"):
        expected = _selected_by(engine, customers, ColumnTest(column, op, tuple(hits)))
        assert _selected_by(engine, customers, ColumnTest(column, op, values)) == expected, (kind, op)
        assert expected and expected != EVERYONE


def test_a_long_in_list_in_a_rules_file_parses_and_selects(engine, customers):
    values = ", ".join(["c1", *(f"x{i}" for i in range(50_000))])
    assert selected(engine, customers, f"customer_id: {{in: [{values}]}}") == {"c1"}
