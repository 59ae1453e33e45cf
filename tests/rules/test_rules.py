"""Loading and validating rules files, without a database: every problem at its file:line:col."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import pytest

from orchestrator.errors import Problem, ValidationFailed
from orchestrator.rules.conditions import check_audience
from orchestrator.rules.loader import NO_TABLE_WARNING, load_campaign, validate_campaign_file
from orchestrator.rules.spec import All, Any, CampaignSpec, ColumnTest, Not, parse_condition
from orchestrator.rules.yaml_source import load_yaml, parse_yaml
from tests.support.rules import DEMO_COLUMNS

REPO = Path(__file__).resolve().parents[2]

# Line numbers below refer to this file.
VALID = """\
name: test-campaign
description: A test.
audience:
  all:
    - consent_email: true
    - region: {in: [North, South]}
control:
  share: 0.1
channels:
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
schedule:
  cron: "0 9 * * MON"
  timezone: Europe/Berlin
"""


def problems_of(path: Path, columns=DEMO_COLUMNS) -> list[str]:
    spec, problems = validate_campaign_file(path, columns=columns)
    assert (spec is None) == any(p.severity == "error" for p in problems)
    return [str(p) for p in problems]


def edited(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new)


# --- valid files ----------------------------------------------------------------------------


def test_valid_file_gives_spec(write):
    path = write(VALID)
    spec, problems = validate_campaign_file(path, columns=DEMO_COLUMNS)
    assert problems == []
    assert spec is not None
    assert spec.name == "test-campaign"
    assert spec.description == "A test."
    assert spec.audience == All(
        (ColumnTest("consent_email", "eq", True), ColumnTest("region", "in", ("North", "South")))
    )
    assert spec.control.share == 0.1 and spec.control.salt is None
    email = spec.channels.email
    assert (email.template, email.sender, email.reply_to, email.address_column) == (
        "winback",
        "Acme Bank <offers@acme.example>",
        None,
        "email",
    )
    assert spec.schedule is not None
    assert (spec.schedule.cron, spec.schedule.interval_minutes, spec.schedule.rrule) == ("0 9 * * MON", None, None)
    assert spec.schedule.timezone == "Europe/Berlin"
    assert spec.source == path
    assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_campaign_returns_spec(write):
    spec = load_campaign(write(VALID), columns=DEMO_COLUMNS)
    assert isinstance(spec, CampaignSpec)


def test_example_campaign_validates_against_demo_columns():
    path = REPO / "rules" / "winback-email.yaml"
    spec, problems = validate_campaign_file(path, columns=DEMO_COLUMNS)
    assert problems == []
    assert spec is not None and spec.name == "winback-email"
    assert spec.channels.email is not None and spec.channels.email.template == "winback"
    assert spec.control.share == 0.1
    assert spec.schedule is not None and spec.schedule.cron is not None


def test_minimal_file_defaults(write):
    path = write("name: minimal\ncontrol: {share: 0}\nchannels:\n  email: {template: t1, sender: a@acme.example}\n")
    spec = load_campaign(path, columns=DEMO_COLUMNS)
    assert spec.audience is None  # every customer
    assert spec.description is None and spec.schedule is None
    assert spec.control.share == 0
    assert spec.channels.email.address_column == "email"


def test_without_customer_table_one_warning_and_spec(write):
    spec, problems = validate_campaign_file(write(edited("region:", "regoin:")), columns=None)
    assert spec is not None
    assert problems == [Problem("campaign.yaml", None, None, NO_TABLE_WARNING, "warning")]


def test_schedule_interval_and_rrule(write):
    spec = load_campaign(write(edited('cron: "0 9 * * MON"', "interval_minutes: 60")), columns=DEMO_COLUMNS)
    assert spec.schedule.interval_minutes == 60 and spec.schedule.cron is None
    spec = load_campaign(write(edited('cron: "0 9 * * MON"', "rrule: FREQ=WEEKLY;BYDAY=MO;BYHOUR=9")), columns=None)
    assert spec.schedule.rrule == "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"


def test_schema_describes_the_file_not_its_digest():
    properties = CampaignSpec.model_json_schema()["properties"]
    assert list(properties)[:9] == [
        "name",
        "description",
        "audience",
        "control",
        "channels",
        "schedule",
        "scores",
        "variants",
        "policy",
    ]


# --- one error each, at its place -----------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "  share: 0.1\n",
            "  share: 0.1: 2\n",
            "campaign.yaml:8:13: YAML syntax error: mapping values are not allowed here "
            "(a value containing ': ' must be put in quotes)",
            id="yaml-syntax",
        ),
        pytest.param(
            "description: A test.\n",
            "description: A test.\nname: again\n",
            "campaign.yaml:3:1: duplicate key 'name' (first given on line 1)",
            id="duplicate-key",
        ),
        pytest.param(
            "audience:",
            "audiance:",
            "campaign.yaml:3:1: unknown key 'audiance', did you mean 'audience'?",
            id="unknown-key",
        ),
        pytest.param(
            "timezone:",
            "timezon:",
            "campaign.yaml:15:3: unknown key 'timezon', did you mean 'timezone'?",
            id="unknown-nested-key",
        ),
        pytest.param(
            "- region:",
            "- regoin:",
            "campaign.yaml:6:7: unknown column 'regoin', did you mean 'region'?",
            id="unknown-column",
        ),
        pytest.param(
            "- region: {in: [North, South]}",
            "- region: 5",
            "campaign.yaml:6:15: column 'region' holds text; compare it with text such as '5', not the number 5",
            id="text-vs-number",
        ),
        pytest.param(
            "- region: {in: [North, South]}",
            "- region: {in: [North, 7]}",
            "campaign.yaml:6:28: column 'region' holds text; compare it with text such as '7', not the number 7",
            id="text-vs-number-in-list",
        ),
        pytest.param(
            "- consent_email: true",
            "- consent_email: yes",
            "campaign.yaml:5:22: column 'consent_email' holds true/false; compare it with true or false, "
            "not the text 'yes'",
            id="yes-is-text",
        ),
        pytest.param(
            "- region: {in: [North, South]}",
            "- region: {inn: [North, South]}",
            "campaign.yaml:6:16: unknown operator 'inn' for column 'region', did you mean 'in'?",
            id="bad-operator",
        ),
        pytest.param(
            "- region: {in: [North, South]}",
            "- region: {'>=': North}",
            "campaign.yaml:6:16: unknown operator '>=' for column 'region', did you mean 'gte'?",
            id="symbol-operator",
        ),
        pytest.param(
            "share: 0.1", "share: 0.95", "campaign.yaml:8:10: 'share' must be at most 0.9, not 0.95", id="share-too-big"
        ),
        pytest.param(
            "share: 0.1",
            "share: ten",
            "campaign.yaml:8:10: 'share' must be a number, not the text 'ten'",
            id="share-not-a-number",
        ),
        pytest.param(
            "  timezone: Europe/Berlin\n",
            "  timezone: Europe/Berlin\nlearning:\n  explore: 0.7\n",
            "campaign.yaml:17:12: 'explore' must be at most 0.5, not 0.7",
            id="explore-too-big",
        ),
        pytest.param(
            "  timezone: Europe/Berlin\n",
            "  timezone: Europe/Berlin\nlearning:\n  explore: -0.1\n",
            "campaign.yaml:17:12: 'explore' must be at least 0.0, not -0.1",
            id="explore-negative",
        ),
        pytest.param(
            "  timezone: Europe/Berlin\n",
            "  timezone: Europe/Berlin\nlearning:\n  explor: 0.1\n",
            "campaign.yaml:17:3: unknown key 'explor', did you mean 'explore'?",
            id="explore-misspelt",
        ),
        pytest.param(
            '"0 9 * * MON"',
            '"0 25 * * MON"',
            "campaign.yaml:14:9: invalid cron expression '0 25 * * MON': bad hour "
            "(the 5 fields are minute hour day-of-month month day-of-week, e.g. '0 9 * * MON')",
            id="bad-cron",
        ),
        pytest.param(
            "Europe/Berlin",
            "Europe/Berln",
            "campaign.yaml:15:13: unknown time zone 'Europe/Berln', did you mean 'Europe/Berlin'?",
            id="bad-timezone",
        ),
        pytest.param(
            "  timezone: Europe/Berlin\n",
            "  timezone: Europe/Berlin\n  interval_minutes: 60\n",
            "campaign.yaml:14:3: a schedule needs exactly one of cron, interval_minutes or rrule; "
            "got cron and interval_minutes",
            id="two-schedules",
        ),
        pytest.param(
            'channels:\n  email:\n    template: winback\n    sender: "Acme Bank <offers@acme.example>"\n',
            "",
            "campaign.yaml:1:1: missing required key 'channels'",
            id="missing-channels",
        ),
        pytest.param(
            'channels:\n  email:\n    template: winback\n    sender: "Acme Bank <offers@acme.example>"\n',
            "channels: {}\n",
            "campaign.yaml:9:11: at least one channel is required, e.g. 'email:' with template and sender",
            id="no-channel",
        ),
        pytest.param(
            '"Acme Bank <offers@acme.example>"',
            "offers-at-acme.example",
            "campaign.yaml:12:13: sender 'offers-at-acme.example' is not an e-mail address; "
            "write 'offers@acme.example' or 'Acme <offers@acme.example>'",
            id="invalid-sender",
        ),
        pytest.param(
            '"Acme Bank <offers@acme.example>"',
            '"Acme Bank <offers@acme>"',
            "campaign.yaml:12:13: sender 'Acme Bank <offers@acme>' is not a valid e-mail address: "
            "The part after the @-sign is not valid. It should have a period.",
            id="sender-without-domain",
        ),
        pytest.param(
            "    template: winback\n",
            "    template: winback\n    address_column: mail\n",
            "campaign.yaml:12:21: address column 'mail' is not a column of the customer table, did you mean 'email'?",
            id="unknown-address-column",
        ),
        pytest.param(
            "name: test-campaign",
            "name: Test Campaign",
            "campaign.yaml:1:7: name 'Test Campaign' is not allowed: use lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 100 characters",
            id="bad-name",
        ),
        pytest.param(
            "  share: 0.1\n",
            "  share: 0.1\n  salt: 2026\n",
            "campaign.yaml:9:9: 'salt' must be text, not the number 2026; put it in quotes: '2026'",
            id="salt-not-text",
        ),
        pytest.param(
            'schedule:\n  cron: "0 9 * * MON"\n  timezone: Europe/Berlin\n',
            "schedule: weekly\n",
            "campaign.yaml:13:11: 'schedule' must be a mapping with the keys cron, interval_minutes, rrule, "
            "timezone, not the text 'weekly'",
            id="schedule-not-a-mapping",
        ),
        pytest.param(
            "  all:\n",
            "  and:\n",
            "campaign.yaml:4:3: unknown key 'and', did you mean 'all'?",
            id="and-instead-of-all",
        ),
    ],
)
def test_one_error_at_its_place(write, old, new, expected):
    assert problems_of(write(edited(old, new))) == [expected]


def test_missing_nested_key_points_at_its_parent(write):
    assert problems_of(write(edited("    template: winback\n", ""))) == [
        "campaign.yaml:10:3: 'email' is missing the required key 'template'"
    ]


def test_yaml_syntax_error_stops_further_checks(write):
    assert problems_of(write("name: [x\nfoo: bar\n")) == [
        "campaign.yaml:2:4: YAML syntax error: while parsing a flow sequence, expected ',' or ']', but got ':'"
    ]


def test_tabs_get_a_hint(write):
    (problem,) = problems_of(write("name: x\ncontrol:\n\tshare: 0.1\n"))
    assert problem.startswith("campaign.yaml:3:1: YAML syntax error:")
    assert problem.endswith("(indent with spaces, not tabs)")


def test_every_error_in_one_file_is_reported(write):
    text = """\
name: Winback
audiance: {}
audience:
  - regoin: North
  - territory: 5
  - age: {gtt: 18, lt: "80"}
  - segment: {in: [gold, null]}
  - recency_days: {between: [365, 90]}
control:
  share: 1.5
channels:
  email:
    template: winback
    sender: nobody
    address_column: mail
schedule:
  cron: every monday
  timezone: Mars/Olympus
sha256: abc
"""
    path = write(text)
    assert problems_of(path) == [
        "campaign.yaml:1:7: name 'Winback' is not allowed: use lower-case letters, digits, '-' and '_', "
        "starting with a letter or digit, at most 100 characters",
        "campaign.yaml:2:1: unknown key 'audiance', did you mean 'audience'?",
        "campaign.yaml:4:5: unknown column 'regoin', did you mean 'region'?",
        "campaign.yaml:5:16: column 'territory' holds text; compare it with text such as '5', not the number 5",
        "campaign.yaml:6:11: unknown operator 'gtt' for column 'age', did you mean 'gt'?",
        "campaign.yaml:6:24: column 'age' holds numbers; write 80 without quotes, not the text '80'",
        "campaign.yaml:7:26: null inside 'in' never matches; use 'is_null: true' for missing values instead",
        "campaign.yaml:8:29: 'between' needs [low, high] with low <= high, got [365, 90]",
        "campaign.yaml:10:10: 'share' must be at most 0.9, not 1.5",
        "campaign.yaml:14:13: sender 'nobody' is not an e-mail address; "
        "write 'offers@acme.example' or 'Acme <offers@acme.example>'",
        "campaign.yaml:15:21: address column 'mail' is not a column of the customer table, did you mean 'email'?",
        "campaign.yaml:17:9: invalid cron expression 'every monday': wrong number of fields "
        "(the 5 fields are minute hour day-of-month month day-of-week, e.g. '0 9 * * MON')",
        "campaign.yaml:18:13: unknown time zone 'Mars/Olympus', e.g. Europe/Berlin",
        "campaign.yaml:19:1: unknown key 'sha256'",
    ]
    with pytest.raises(ValidationFailed) as caught:
        load_campaign(path, columns=DEMO_COLUMNS)
    assert len(caught.value.errors) == 14
    assert "14 error(s)" in str(caught.value)


def test_file_as_given_in_problems(write, tmp_path):
    write(edited("share: 0.1", "share: 2"), name="sub.yaml")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "sub.yaml").write_text(edited("share: 0.1", "share: 2"))
    assert problems_of(Path("rules/sub.yaml")) == ["rules/sub.yaml:8:10: 'share' must be at most 0.9, not 2"]


def test_missing_file(write):
    assert problems_of(Path("nope.yaml")) == ["nope.yaml: the rules file does not exist"]


def test_empty_file(write):
    assert problems_of(write("")) == [
        "campaign.yaml:1:1: the rules file is empty; it needs keys such as name, description, audience, "
        "control, channels, schedule"
    ]


def test_not_utf8(write, tmp_path):
    (tmp_path / "latin1.yaml").write_bytes("name: x\ndescription: Grüße\n".encode("latin-1"))
    assert problems_of(Path("latin1.yaml")) == [
        "latin1.yaml:2: the file is not UTF-8 text; save it with UTF-8 encoding"
    ]


def test_empty_audience_is_an_error_not_everyone(write):
    audience = "audience:\n  all:\n    - consent_email: true\n    - region: {in: [North, South]}\n"
    assert problems_of(write(edited(audience, "audience:\n"))) == [
        "campaign.yaml:3:1: a condition must be a mapping such as 'region: North' or a list of them; this one is empty"
    ]


def test_default_address_column_must_exist(write):
    columns = {k: v for k, v in DEMO_COLUMNS.items() if k != "email"}
    assert problems_of(write(VALID), columns) == [
        "campaign.yaml:10:3: the default address column 'email' is not a column of the customer table; "
        "name the column with 'address_column'"
    ]


def test_address_column_must_hold_text(write):
    text = edited("    template: winback\n", "    template: winback\n    address_column: age\n")
    assert problems_of(write(text)) == [
        "campaign.yaml:12:21: address column 'age' holds integer values, not e-mail addresses"
    ]


# --- conditions (grammar, without a file) ---------------------------------------------------


def parsed(yaml_text: str):
    condition, issues = parse_condition(load_yaml(yaml_text, "t.yaml").data)
    assert issues == []
    return condition


def test_condition_grammar():
    assert parsed("region: North") == ColumnTest("region", "eq", "North")
    assert parsed("region: null") == ColumnTest("region", "is_null", True)
    assert parsed("region: {ne: null}") == ColumnTest("region", "is_null", False)
    assert parsed("- region: North\n- age: 5") == All((ColumnTest("region", "eq", "North"), ColumnTest("age", "eq", 5)))
    assert parsed("{region: North, age: 5}") == parsed("all: [{region: North}, {age: 5}]")
    assert parsed("age: {gte: 18, lt: 80}") == All((ColumnTest("age", "gte", 18), ColumnTest("age", "lt", 80)))
    assert parsed("any: [{region: North}, {not: {segment: gold}}]") == Any(
        (ColumnTest("region", "eq", "North"), Not(ColumnTest("segment", "eq", "gold")))
    )
    assert parsed("signup: {between: [2026-01-01, '2026-12-31']}") == ColumnTest(
        "signup", "between", (date(2026, 1, 1), "2026-12-31")
    )
    assert parsed("seen: {lt: 2026-01-01 09:30:00}") == ColumnTest("seen", "lt", datetime(2026, 1, 1, 9, 30))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("segment: {in: []}", "'in' needs at least one value"),
        ("segment: {in: gold}", "'in' needs a list such as [gold, silver], not the text 'gold'"),
        (
            "segment: {not_in: [null]}",
            "null inside 'not_in' never matches; use 'is_null: false' for missing values instead",
        ),
        ("age: {between: [1, 2, 3]}", "'between' needs exactly two values [low, high], got 3"),
        ("age: {between: [9, 1]}", "'between' needs [low, high] with low <= high, got [9, 1]"),
        ("age: {between: 5}", "'between' needs a list such as [90, 365], not the number 5"),
        ("age: {is_null: 'no'}", "'is_null' takes true or false, not the text 'no'"),
        ("age: {gt: null}", "'gt' cannot compare with null; use 'is_null: true' for missing values"),
        (
            "segment: [gold, silver]",
            "column 'segment' is given a list; to match any of several values write 'segment: {in: [...]}'",
        ),
        (
            "segment: {eq: [gold]}",
            "'eq' for column 'segment' needs a single value, not a list; to match any of several values use 'in'",
        ),
        (
            "segment: {}",
            "no operator for column 'segment'; use one of eq, ne, lt, lte, gt, gte, in, not_in, between, is_null, "
            "contains, starts_with, ends_with, like, matches, days_ago, before, after",
        ),
        ("gt: 5", "'gt' is an operator and belongs under a column, e.g. 'age: {gt: ...}'"),
        ("or: [{a: 1}]", "unknown key 'or', did you mean 'any'?"),
        ("any: []", "'any' needs at least one condition"),
        ("any: {a: 1}", "'any' needs a list of conditions, each on its own line starting with '- '"),
        ("'5'", "a condition must be a mapping such as 'region: North' or a list of them; this one is the text '5'"),
        ("age: {gte: .inf}", "inf is not a usable number"),
    ],
)
def test_condition_grammar_errors(text, message):
    condition, issues = parse_condition(load_yaml(text, "t.yaml").data)
    assert condition is None
    assert [i.message for i in issues] == [message]


def test_check_audience_value_kinds():
    doc = load_yaml(
        """\
- signup: {gte: 2026-01-01}
- signup: {lt: '2026-02-01'}
- signup: {gt: yesterday}
- seen: {gte: 2026-01-01}
- seen: {lt: '2026-01-01T10:00:00'}
- seen: {lt: 5}
- revenue: {gt: 'lots'}
- consent: {gt: true}
""",
        "t.yaml",
    )
    condition, issues = parse_condition(doc.data, ())
    assert issues == []
    columns = {"signup": "date", "seen": "datetime", "revenue": "number", "consent": "boolean"}
    assert [str(p) for p in check_audience(condition, columns, doc.positions)] == [
        "t.yaml:3:16: column 'signup' holds dates; compare it with a date such as 2026-01-31, not the text 'yesterday'",
        "t.yaml:6:14: column 'seen' holds dates and times; compare it with a date such as 2026-01-31 "
        "or 2026-01-31T09:00:00, not the number 5",
        "t.yaml:7:17: column 'revenue' holds numbers; compare it with a number such as 100, not the text 'lots'",
        "t.yaml:8:13: column 'consent' holds true/false; 'gt' does not apply, use eq or ne",
    ]


def test_spec_accepts_audience_as_plain_data():
    spec = CampaignSpec.model_validate(
        {
            "name": "x",
            "audience": {"region": {"in": ["North"]}},
            "control": {"share": 0.2},
            "channels": {"email": {"template": "t", "sender": "a@acme.example"}},
            "source": "x.yaml",
            "sha256": "0" * 64,
        }
    )
    assert spec.audience == ColumnTest("region", "in", ("North",))
    assert spec.model_dump()["audience"] == {"region": {"in": ["North"]}}


# --- YAML positions -------------------------------------------------------------------------


def test_positions_of_keys_values_and_items():
    document, problems = parse_yaml("a:\n  b: [x, {c: 1}]\n  d: 2\n", "p.yaml")
    assert problems == [] and document is not None
    assert document.data == {"a": {"b": ["x", {"c": 1}], "d": 2}}
    pos = document.positions
    assert pos.key(("a", "b")) == (2, 3)
    assert pos.value(("a", "b")) == (2, 6)
    assert pos.value(("a", "b", 1)) == (2, 10)
    assert pos.key(("a", "b", 1, "c")) == (2, 11)
    assert pos.value(("a", "b", 1, "c")) == (2, 14)
    assert pos.value(("a", "d", "nothing", 3)) == (3, 6)  # nearest enclosing value
    assert str(pos.problem(("a", "d"), "bad", at="key")) == "p.yaml:3:3: bad"


def test_yaml_12_scalars():
    data = load_yaml("a: yes\nb: no\nc: on\nd: 12:30\ne: 010\nf: true\ng: 2026-01-31\nh: ~\n", "s.yaml").data
    assert data == {
        "a": "yes", "b": "no", "c": "on", "d": "12:30", "e": 10, "f": True, "g": date(2026, 1, 31), "h": None
    }  # fmt: skip


def test_yaml_never_constructs_objects():
    _, problems = parse_yaml("a: !!python/object/apply:os.system [echo hi]\n", "x.yaml")
    assert [p.line for p in problems] == [1]
    with pytest.raises(ValidationFailed):
        load_yaml("a: !!python/name:os.system\n", "x.yaml")
