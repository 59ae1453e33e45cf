"""Segments (in_segment), include/exclude id lists and the new operators in rules files.

Validation tests check every problem's exact file:line:col; database tests run the whole
selection (``audience_filter``) on SQLite and PostgreSQL and compare exact ids.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.customers.table import customer_columns, customer_table
from orchestrator.rules.condition_parser import InSegment
from orchestrator.rules.conditions import audience_filter, compile_audience
from orchestrator.rules.id_lists import IdFileError, drop_id_tables, read_ids
from orchestrator.rules.loader import load_campaign, validate_campaign_file
from orchestrator.rules.segments import resolve_segments
from orchestrator.rules.spec import ColumnTest, Not, condition_to_data, parse_condition
from orchestrator.rules.yaml_source import load_yaml
from tests.support.rules import DEMO_COLUMNS

REPO = Path(__file__).resolve().parents[2]

TAIL = """\
control:
  share: 0.1
channels:
  email:
    template: winback
    sender: offers@acme.example
"""


@pytest.fixture
def rules(tmp_path, monkeypatch):
    """Write ``rules/campaign.yaml`` (audience lines + the rest) and segment files; cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()

    def write(audience: str, extra: str = "", **segments: str) -> Path:
        if segments:
            (tmp_path / "rules" / "segments").mkdir(exist_ok=True)
        for name, text in segments.items():
            (tmp_path / "rules" / "segments" / f"{name}.yaml").write_text(text, encoding="utf-8")
        path = Path("rules/campaign.yaml")
        path.write_text(f"name: test\naudience:\n{audience}{TAIL}{extra}", encoding="utf-8")
        return path

    return write


def problems_of(path: Path, **kwargs) -> list[str]:
    spec, problems = validate_campaign_file(path, columns=kwargs.pop("columns", DEMO_COLUMNS), **kwargs)
    assert (spec is None) == any(p.severity == "error" for p in problems)
    return [str(p) for p in problems]


LAPSED = "name: lapsed\ndescription: Lapsed.\naudience:\n  recency_days: {between: [90, 365]}\n"


# --- segments: validation -------------------------------------------------------------------


def test_segment_is_resolved_into_the_audience(rules):
    path = rules("  - consent_email: true\n  - not: {in_segment: lapsed}\n", lapsed=LAPSED)
    spec = load_campaign(path, columns=DEMO_COLUMNS)
    inner = spec.audience.conditions[1]
    assert inner == Not(InSegment("lapsed"))
    assert inner.condition.condition == ColumnTest("recency_days", "between", (90, 365))
    assert condition_to_data(spec.audience) == {
        "all": [{"consent_email": {"eq": True}}, {"not": {"in_segment": "lapsed"}}]
    }


def test_audience_that_is_only_a_segment(rules):
    spec = load_campaign(rules("  in_segment: lapsed\n", lapsed=LAPSED), columns=DEMO_COLUMNS)
    assert spec.audience == InSegment("lapsed")
    assert spec.audience.condition == ColumnTest("recency_days", "between", (90, 365))


def test_example_segment_validates():
    condition, issues = parse_condition({"in_segment": "lapsed"})
    assert issues == []
    doc = load_yaml("in_segment: lapsed\n", "x.yaml")
    resolved, problems = resolve_segments(
        condition, doc.positions, segments_dir=REPO / "rules" / "segments", columns=DEMO_COLUMNS
    )
    assert problems == []
    assert resolved.condition == ColumnTest("recency_days", "between", (90, 365))


def test_unknown_segment_suggests_a_close_name(rules):
    path = rules("  - consent_email: true\n  - in_segment: lapsd\n", lapsed=LAPSED, loyal=LAPSED)
    assert problems_of(path) == ["rules/campaign.yaml:4:17: unknown segment 'lapsd', did you mean 'lapsed'?"]


def test_unknown_segment_lists_the_segments(rules):
    path = rules("  in_segment: vip\n", lapsed=LAPSED)
    assert problems_of(path) == ["rules/campaign.yaml:3:15: unknown segment 'vip'; the segments are: lapsed"]


def test_unknown_segment_without_segments_folder(rules):
    assert problems_of(rules("  in_segment: vip\n")) == [
        "rules/campaign.yaml:3:15: unknown segment 'vip'; there are no segment files in rules/segments"
    ]


def test_explicit_segments_dir(rules, tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "lapsed.yaml").write_text(LAPSED)
    path = rules("  in_segment: lapsed\n")
    assert problems_of(path, segments_dir=Path("shared")) == []
    assert problems_of(path) != []


def test_problems_inside_a_segment_file_are_reported_there(rules):
    bad = """\
name: bad
descripton: x
audience:
  - regoin: North
  - recency_days: {between: [365, 90]}
  - age: {contains: '1'}
"""
    path = rules("  - in_segment: bad\n  - in_segment: bad\n", bad=bad)
    assert problems_of(path) == [
        "rules/segments/bad.yaml:2:1: unknown key 'descripton', did you mean 'description'?",
        "rules/segments/bad.yaml:4:5: unknown column 'regoin', did you mean 'region'?",
        "rules/segments/bad.yaml:5:29: 'between' needs [low, high] with low <= high, got [365, 90]",
        "rules/segments/bad.yaml:6:11: column 'age' holds numbers; 'contains' only applies to text columns",
    ]  # each problem once, although the segment is used twice


def test_segment_file_form(rules):
    path = rules(
        "  - in_segment: named\n  - in_segment: empty\n  - in_segment: noaudience\n",
        named="name: other\naudience: {age: 5}\n",
        empty="",
        noaudience="name: noaudience\n",
    )
    assert problems_of(path) == [
        "rules/segments/named.yaml:1:7: the segment name must be the file name 'named', not the text 'other'",
        "rules/segments/empty.yaml:1:1: the segment file is empty; it needs the keys name and audience",
        "rules/segments/noaudience.yaml:1:1: missing required key 'audience'",
    ]


def test_segments_may_use_segments_but_not_in_a_cycle(rules):
    a = "name: a\naudience:\n  - age: {gte: 18}\n  - in_segment: b\n"
    b = "name: b\naudience:\n  any:\n    - in_segment: a\n    - region: North\n"
    c = "name: c\naudience:\n  in_segment: lapsed\n"
    assert problems_of(rules("  in_segment: c\n", c=c, lapsed=LAPSED)) == []
    assert problems_of(rules("  in_segment: a\n", a=a, b=b)) == [
        "rules/segments/b.yaml:4:19: segments refer to each other in a cycle: a -> b -> a"
    ]
    selfish = "name: me\naudience:\n  not: {in_segment: me}\n"
    assert problems_of(rules("  in_segment: me\n", me=selfish)) == [
        "rules/segments/me.yaml:3:21: segments refer to each other in a cycle: me -> me"
    ]


def test_in_segment_needs_a_name(rules):
    assert problems_of(rules("  in_segment: [a, b]\n")) == [
        "rules/campaign.yaml:3:15: 'in_segment' needs a segment name (lower-case letters, digits, '-' and '_', "
        "the file name under segments/ without .yaml), not a list"
    ]


# --- new operators: validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("age: {contains: '1'}", "3:9: column 'age' holds numbers; 'contains' only applies to text columns"),
        (
            "consent_email: {like: 't%'}",
            "3:19: column 'consent_email' holds true/false; 'like' only applies to text columns",
        ),
        (
            "region: {starts_with: 5}",
            "3:25: 'starts_with' needs non-empty text such as 'acme', not the number 5; put it in quotes: '5'",
        ),
        ("region: {ends_with: ''}", "3:23: 'ends_with' needs non-empty text such as 'acme', not empty text"),
        (
            "email: {matches: '\\bacme'}",
            "3:20: '\\b' in '\\bacme' means different things in the databases; use only \\d, \\w, \\s "
            "(and \\D, \\W, \\S) or a backslash before punctuation",
        ),
        (
            "email: {matches: '(?P<x>a)'}",
            "3:20: '(?' groups in '(?P<x>a)' are not portable between the databases; use plain ( ) groups",
        ),
        (
            "email: {matches: 'a(b'}",
            "3:20: 'matches' needs a regular expression; 'a(b' is not one: "
            "missing ), unterminated subpattern at position 1",
        ),
        ("region: {days_ago: {gte: 90}}", "3:12: column 'region' holds text; 'days_ago' only applies to date columns"),
        (
            "recency_days: {before: today}",
            "3:18: column 'recency_days' holds numbers; 'before' only applies to date columns",
        ),
        (
            "signup: {days_ago: {gte: 1.5}}",
            "3:28: 'days_ago' counts whole days; give a whole number such as 90, not the number 1.5",
        ),
        ("signup: {days_ago: {gtee: 9}}", "3:23: unknown operator 'gtee' in 'days_ago', did you mean 'gte'?"),
        (
            "signup: {days_ago: 90}",
            "3:22: 'days_ago' needs a mapping of comparisons such as {gte: 90} (eq, lt, lte, gt, gte, between), "
            "not the number 90",
        ),
        ("signup: {days_ago: {between: [9, 1]}}", "3:32: 'between' needs [low, high] with low <= high, got [9, 1]"),
        (
            "signup: {after: '-30 days'}",
            "3:19: 'after' needs a day: a date such as 2026-01-31, or one relative to the wave date such as today, "
            "-30d or +7d; not the text '-30 days'",
        ),
        (
            "signup: {before: 2026-01-01 10:00:00}",
            "3:20: 'before' needs a day: a date such as 2026-01-31, or one relative to the wave date such as today, "
            "-30d or +7d; not the date and time 2026-01-01T10:00:00",
        ),
        ("region: {containz: x}", "3:12: unknown operator 'containz' for column 'region', did you mean 'contains'?"),
    ],
)
def test_new_operator_errors(rules, line, expected):
    columns = {**DEMO_COLUMNS, "signup": "date"}
    assert problems_of(rules(f"  {line}\n"), columns=columns) == [f"rules/campaign.yaml:{expected}"]


def test_new_operators_validate(rules):
    audience = """\
  - email: {contains: acme, ends_with: .example, matches: '^[a-z0-9.]+@'}
  - last_name: {starts_with: Mc, like: 'Mc_%'}
  - signup: {days_ago: {between: [30, 365]}, after: 2020-01-01, before: -7d}
  - seen: {days_ago: {lt: 10}}
"""
    columns = {**DEMO_COLUMNS, "signup": "date", "seen": "datetime"}
    assert problems_of(rules(audience), columns=columns) == []


# --- include / exclude: validation ----------------------------------------------------------


def test_list_sources_are_checked(rules, tmp_path):
    (tmp_path / "rules" / "empty.csv").write_text("customer_id\n")
    (tmp_path / "rules" / "wide.csv").write_text("id,name\n1,a\n")
    (tmp_path / "rules" / "latin1.txt").write_bytes("c1\nc2\nGr\xfc\xdfe\n".encode("latin-1"))
    extra = """\
include:
  - file: missing.csv
  - file: empty.csv
  - {file: a.csv, table: b}
  - {}
  - table: 'no such'
exclude:
  - file: wide.csv
  - file: latin1.txt
  - file: empty.csv
  - fil: x.csv
"""
    assert problems_of(rules("  consent_email: true\n", extra)) == [
        "rules/campaign.yaml:11:11: the id file 'missing.csv' does not exist (looked for rules/missing.csv)",
        "rules/campaign.yaml:12:11: the id file 'empty.csv' has no customer ids, so 'include' would select nobody",
        "rules/campaign.yaml:13:5: a list needs exactly one of 'file: ids.csv' or 'table: name'; got both",
        "rules/campaign.yaml:14:5: a list needs exactly one of 'file: ids.csv' or 'table: name'; got neither",
        "rules/campaign.yaml:15:12: 'no such' is not a table name: use letters, digits and '_'",
        "rules/campaign.yaml:20:5: unknown key 'fil'",
        "rules/wide.csv:1: the id file has several columns (id, name) but none is named 'customer_id'; "
        "name the column of ids 'customer_id' or give one id per line",
        "rules/latin1.txt:3: the id file is not UTF-8 text; save it with UTF-8 encoding",
    ]


def test_list_tables_without_engine_get_a_warning(rules):
    path = rules("  consent_email: true\n", "exclude:\n  - table: complaints\n")
    assert problems_of(path) == [
        "rules/campaign.yaml: warning: no database given, so the include/exclude tables were not checked"
    ]


def test_list_tables_are_checked_in_the_database(rules, engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE complaints (customer_id TEXT)"))
        conn.execute(sa.text("CREATE TABLE vip_list (id TEXT, customer TEXT)"))
    extra = "include:\n  - table: complaint\n  - table: vip_list\nexclude:\n  - table: complaints\n"
    assert problems_of(rules("  consent_email: true\n", extra), engine=engine) == [
        "rules/campaign.yaml:11:12: there is no table 'complaint' in the database, did you mean 'complaints'?",
        "rules/campaign.yaml:12:12: table 'vip_list' has no column 'customer_id', did you mean 'customer'?",
    ]


def test_read_ids_forms(tmp_path):
    (tmp_path / "a.txt").write_text("c1\n\n  c2 \ncustomer_id\n")
    (tmp_path / "b.csv").write_text("\ufeffName;Customer_ID\nx;c1\ny;\nz;c3\n")
    (tmp_path / "c.txt").write_text("customer_id\r\nc9\r\n")
    assert list(read_ids(tmp_path / "a.txt")) == ["c1", "c2", "customer_id"]
    assert list(read_ids(tmp_path / "b.csv")) == ["c1", "c3"]
    assert list(read_ids(tmp_path / "c.txt")) == ["c9"]
    with pytest.raises(IdFileError, match="does not exist"):
        list(read_ids(tmp_path / "nope.txt"))


# --- the whole selection in the database ----------------------------------------------------

IDS = [f"c{i}" for i in range(1, 9)]
RECENCY = {"c1": 30, "c2": 95, "c3": 200, "c4": 400, "c5": 100, "c6": 365, "c7": 90, "c8": None}


@pytest.fixture
def customers(make_customer_table) -> sa.Table:
    return make_customer_table(
        [
            sa.Column("customer_id", sa.Text, primary_key=True),
            sa.Column("consent_email", sa.Boolean),
            sa.Column("recency_days", sa.Integer),
            sa.Column("email", sa.Text),
            sa.Column("last_purchase", sa.Date),
        ],
        [
            {
                "customer_id": i,
                "consent_email": i != "c5",
                "recency_days": RECENCY[i],
                "email": f"{i}@{'acme' if int(i[1:]) % 2 else 'other'}.example",
                "last_purchase": None
                if (recency := RECENCY[i]) is None
                else date.fromordinal(date(2026, 1, 1).toordinal() - recency),
            }
            for i in IDS
        ],
    )


def selection(engine, table, path: Path, **kwargs) -> list[str]:
    spec = load_campaign(path, columns=customer_columns(engine, "customers"), engine=engine)
    with engine.connect() as conn:
        where = audience_filter(spec, table, conn, as_of=kwargs.get("as_of", date(2026, 1, 1)))
        ids = list(conn.execute(sa.select(table.c.customer_id).where(where).order_by(table.c.customer_id)).scalars())
        drop_id_tables(conn)
        conn.commit()
    return ids


def test_segment_selects_in_the_database(rules, engine, customers):
    assert selection(engine, customers, rules("  in_segment: lapsed\n", lapsed=LAPSED)) == [
        "c2", "c3", "c5", "c6", "c7"
    ]  # fmt: skip
    assert selection(engine, customers, rules("  - consent_email: true\n  - not: {in_segment: lapsed}\n")) == [
        "c1", "c4", "c8"
    ]  # fmt: skip


def test_days_ago_matches_recency(rules, engine, customers):
    path = rules("  last_purchase: {days_ago: {between: [90, 365]}}\n")
    assert selection(engine, customers, path) == ["c2", "c3", "c5", "c6", "c7"]
    assert selection(engine, customers, path, as_of=date(2026, 1, 6)) == ["c2", "c3", "c5", "c7"]


def test_include_and_exclude(rules, engine, customers, tmp_path):
    (tmp_path / "rules" / "lists").mkdir()
    (tmp_path / "rules" / "lists" / "vip.txt").write_text("c1\nc3\nc4\nc5\nc99\nc3\n")
    (tmp_path / "rules" / "lists" / "more.csv").write_text("name,customer_id\nx,c6\ny,\n")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE complaints (customer_id TEXT, reason TEXT)"))
        conn.execute(sa.text("INSERT INTO complaints VALUES ('c3', 'spam'), (NULL, 'unknown')"))
        conn.execute(sa.text("CREATE TABLE numbered (customer_id INTEGER)"))
    extra = """\
include:
  - file: lists/vip.txt
  - file: lists/more.csv
exclude:
  - table: complaints
"""
    path = rules("  consent_email: true\n", extra)
    # c5 has no consent, c3 complained (and the null in complaints excludes nobody else)
    assert selection(engine, customers, path) == ["c1", "c4", "c6"]
    path = rules("  consent_email: true\n", "exclude:\n  - table: numbered\n  - file: lists/vip.txt\n")
    assert selection(engine, customers, path) == ["c2", "c6", "c7", "c8"]


def test_include_table_with_number_ids(rules, engine, customers):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE numbered (customer_id INTEGER)"))
        conn.execute(sa.text("INSERT INTO numbered VALUES (7), (8), (NULL)"))
        conn.execute(sa.text("INSERT INTO customers (customer_id, consent_email) VALUES ('7', true)"))
    path = rules("  consent_email: true\n", "include:\n  - table: numbered\n")
    table = customer_table(engine, "customers")
    assert selection(engine, table, path) == ["7"]


def test_large_id_file_is_loaded_not_inlined(rules, engine, customers, tmp_path):
    (tmp_path / "rules" / "big.csv").write_text(
        "customer_id\n" + "\n".join(f"x{i}" for i in range(50_000)) + "\nc2\nc4\n"
    )
    path = rules("  consent_email: true\n", "include:\n  - file: big.csv\n")
    spec = load_campaign(path, columns=None)
    with engine.connect() as conn:
        where = audience_filter(spec, customers, conn)
        compiled = sa.select(customers.c.customer_id).where(where).compile(dialect=engine.dialect)
        assert len(compiled.params) < 5
        assert sorted(conn.execute(sa.select(customers.c.customer_id).where(where)).scalars()) == ["c2", "c4"]
        drop_id_tables(conn)


def test_audience_filter_without_audience_or_lists(rules, engine, customers, tmp_path):
    path = Path("rules/plain.yaml")
    path.write_text("name: plain\n" + TAIL)
    assert selection(engine, customers, path) == IDS


def test_compile_audience_keeps_its_two_argument_form(customers):
    condition, _ = parse_condition({"email": {"contains": "ACME"}})
    assert compile_audience(condition, customers) is not None
