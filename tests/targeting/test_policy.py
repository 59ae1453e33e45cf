"""The contact policy: file validation, SQL filters over real tables, suppression list, CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import typer

from orchestrator.db.tables import Contact, table_of
from orchestrator.ledger import contacts as ledger
from orchestrator.rules.policy_spec import PolicySpec, check_policy, load_policy, merge_policy
from orchestrator.rules.yaml_source import parse_yaml
from orchestrator.targeting.control import control_mask
from orchestrator.targeting.policy import (
    SuppressionRow,
    add_suppressions,
    blocked_day,
    import_suppressions,
    is_global_control,
    policy_filters,
    suppression_counts,
)
from tests.support.rules import DEMO_COLUMNS

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 6, 10)  # a Wednesday
MIDNIGHT = datetime.combine(AS_OF, time(0), tzinfo=UTC)


POLICY = PolicySpec.model_validate(
    {
        "consent": {"email": "consent_email", "call_center": "consent_phone"},
        "suppression": {"reasons": ["unsubscribed", "hard_bounce", "complaint"]},
        "frequency_caps": [{"max": 3, "days": 30}, {"max": 2, "days": 7, "channel": "email"}],
        "cooldown": {"complaint_days": 90},
    }
)


def _ago(days: float) -> datetime:
    return MIDNIGHT - timedelta(days=days)


# --- the policy file ------------------------------------------------------------------------


def test_shared_policy_file_is_valid_for_the_demo_columns():
    policy, problems = load_policy(REPO / "rules" / "policy.yaml", DEMO_COLUMNS)
    assert problems == []
    assert policy.consent == {"email": "consent_email", "call_center": "consent_phone", "field_force": "consent_phone"}
    assert [(c.max, c.days, c.channel) for c in policy.frequency_caps] == [(4, 30, None), (2, 7, "email")]
    assert policy.blocked_days.weekdays == ("sun",)
    assert policy.global_control.share == 0.02


def _problems(tmp_path, monkeypatch, text, columns=DEMO_COLUMNS):
    monkeypatch.chdir(tmp_path)
    Path("policy.yaml").write_text(text)
    policy, problems = load_policy(Path("policy.yaml"), columns)
    return policy, [str(p) for p in problems]


def test_policy_file_errors_at_their_place(tmp_path, monkeypatch):
    text = """\
consent:
  email: consent_emial
  call_center: phone
frequncy_caps:
  - {max: 4, days: 30}
cooldown:
  complaint_day: 90
blocked_days:
  weekdays: [sat, sundy]
suppression:
  reasons: [unsubscribed, hardbounce]
global_control:
  share: 2
  salt: g
"""
    policy, problems = _problems(tmp_path, monkeypatch, text)
    assert policy is None
    assert problems == [
        "policy.yaml:2:10: consent column 'consent_emial' for email is not a column of the customer table, "
        "did you mean 'consent_email'?",
        "policy.yaml:3:16: consent column 'phone' for call_center holds text values; it must be a true/false column",
        "policy.yaml:4:1: unknown key 'frequncy_caps', did you mean 'frequency_caps'?",
        "policy.yaml:7:3: unknown key 'complaint_day', did you mean 'complaint_days'?",
        "policy.yaml:9:19: unknown weekday 'sundy', did you mean 'sunday'?",
        "policy.yaml:11:27: unknown suppression reason 'hardbounce', did you mean 'hard_bounce'?",
        "policy.yaml:13:10: 'share' must be at most 0.5, not 2",
    ]


def test_policy_file_without_columns_is_not_checked_against_them(tmp_path, monkeypatch):
    policy, problems = _problems(tmp_path, monkeypatch, "consent: {email: whatever}\n", columns=None)
    assert policy.consent == {"email": "whatever"} and problems == []


def test_policy_file_empty_missing_and_bad_types(tmp_path, monkeypatch):
    assert _problems(tmp_path, monkeypatch, "")[1] == [
        "policy.yaml:1:1: the policy file is empty; it needs keys such as consent, suppression, frequency_caps, "
        "cooldown, blocked_days, global_control, timezone, send_windows"
    ]
    text = "frequency_caps:\n  - {max: 0, days: 7, chanel: email}\nblocked_days:\n  dates: [2026-12-24, christmas]\n"
    problems = _problems(tmp_path, monkeypatch, text)[1]
    assert problems[0] == "policy.yaml:2:11: 'max' must be at least 1, not 0"
    assert problems[1] == "policy.yaml:2:23: unknown key 'chanel', did you mean 'channel'?"
    assert problems[2].startswith("policy.yaml:4:23: 'dates'")
    assert load_policy(tmp_path / "nope.yaml")[1][0].message == "the policy file does not exist"


def test_weekdays_accept_full_names_in_any_case():
    policy = PolicySpec.model_validate({"blocked_days": {"weekdays": ["Sunday", "SAT"]}})
    assert policy.blocked_days.weekdays == ("sun", "sat")


def test_check_policy_places_problems_inside_a_campaign_file():
    document, _ = parse_yaml("name: x\npolicy:\n  consent:\n    email: opt_in\n", "rules/x.yaml")
    problems = check_policy(document.data["policy"], DEMO_COLUMNS, document.positions, loc=("policy",))
    assert [str(p) for p in problems] == [
        "rules/x.yaml:4:12: consent column 'opt_in' for email is not a column of the customer table"
    ]


def test_merge_policy_overrides_key_by_key():
    shared, _ = load_policy(REPO / "rules" / "policy.yaml", DEMO_COLUMNS)
    override = PolicySpec.model_validate(
        {
            "consent": {"sms": "consent_phone"},
            "frequency_caps": [{"max": 1, "days": 14}],
            "blocked_days": {"weekdays": ["sat", "sun"]},
            "global_control": {"share": 0.05, "salt": "global-2026"},
        }
    )
    merged = merge_policy(shared, override)
    assert merged.consent == {**shared.consent, "sms": "consent_phone"}  # mappings merge
    assert [(c.max, c.days) for c in merged.frequency_caps] == [(1, 14)]  # lists are replaced
    assert merged.blocked_days.weekdays == ("sat", "sun")
    assert merged.blocked_days.dates == shared.blocked_days.dates  # unstated keys are kept
    assert merged.suppression == shared.suppression and merged.cooldown == shared.cooldown
    assert merged.global_control.share == 0.05
    assert merge_policy(shared, None) == shared
    assert merge_policy(None, override) == PolicySpec.model_validate(override.model_dump())
    assert (
        merge_policy(shared, PolicySpec.model_validate({"cooldown": {"complaint_days": 30}})).cooldown.complaint_days
        == 30
    )


def test_blocked_day():
    policy = PolicySpec.model_validate({"blocked_days": {"weekdays": ["sun"], "dates": [date(2026, 12, 24)]}})
    assert blocked_day(policy, date(2026, 6, 14)) == "2026-06-14 is a Sunday, a blocked weekday in the contact policy"
    assert blocked_day(policy, date(2026, 12, 24)) == "2026-12-24 is a blocked date in the contact policy"
    assert blocked_day(policy, AS_OF) is None
    assert blocked_day(None, date(2026, 6, 14)) is None


def test_global_control_share_and_stability():
    policy = PolicySpec.model_validate({"global_control": {"share": 0.02, "salt": "global-2026"}})
    ids = [f"C{i:06d}" for i in range(50_000)]
    mask = is_global_control(ids, policy)
    assert 0.017 < mask.mean() < 0.023
    assert np.array_equal(mask, is_global_control(ids, policy))
    # membership depends on the id only, not on the order or the other ids
    assert np.array_equal(is_global_control(ids[::-1], policy), mask[::-1])
    assert np.array_equal(is_global_control(ids[:100], policy), mask[:100])
    # independent of a campaign's control group drawn with another salt
    campaign = control_mask(ids, 0.1, "winback-2026")
    assert 0.01 < mask[campaign].mean() < 0.03
    assert not is_global_control(ids, PolicySpec()).any()
    assert not is_global_control(ids, None).any()


# --- the filters in SQL ---------------------------------------------------------------------


@pytest.fixture
def world(engine):
    """A customer table, ledger rows in and out of the windows, suppressions per channel."""
    meta = sa.MetaData()
    table = sa.Table(
        "customers",
        meta,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("consent_email", sa.Boolean),
        sa.Column("consent_phone", sa.Boolean),
    )
    meta.create_all(engine)
    ids = [f"c{i:02d}" for i in range(1, 16)]
    rows = [{"customer_id": i, "consent_email": True, "consent_phone": True} for i in ids]
    rows[1]["consent_email"] = False  # c02
    rows[2]["consent_email"] = None  # c03: unknown consent is no consent
    rows[2]["consent_phone"] = False
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)

    add_suppressions(
        engine,
        [
            SuppressionRow("c04", "unsubscribed"),  # every channel
            SuppressionRow("c05", "hard_bounce", "email"),
            SuppressionRow("c06", "complaint", "email", created_at=_ago(200)),  # old complaint: blocking only
            SuppressionRow("c07", "complaint", "call_center", created_at=_ago(10)),  # recent: cool-down too
            SuppressionRow("c15", "erased"),  # not a blocking reason in POLICY
        ],
    )

    campaign = ledger.ensure_campaign(engine, "other", None)
    waves = [ledger.open_wave(engine, campaign, f"w{n}", "0" * 64).id for n in range(4)]
    contacts = []

    def contact(customer, channel, status, sent_at):
        wave = waves[sum(1 for c in contacts if c["customer_id"] == customer)]
        contacts.append(
            {
                "wave_id": wave,
                "customer_id": customer,
                "arm": "treatment",
                "channel": channel,
                "status": status,
                "attempts": 1,
                "sent_at": sent_at,
            }
        )

    for days in (20, 15, 10):  # c08: 3 calls in 30 days -> overall cap
        contact("c08", "call_center", "sent", _ago(days))
    for days in (1, 3):  # c09: 2 e-mails in 7 days -> e-mail cap only
        contact("c09", "email", "sent", _ago(days))
    contact("c10", "email", "sent", _ago(20))  # c10: 2 sent; failed and control do not count
    contact("c10", "email", "sent", _ago(25))
    contact("c10", "email", "failed", _ago(5))
    contact("c10", "email", "control", None)
    for days in (40, 35, 30.5):  # c11: all before the 30-day window
        contact("c11", "email", "sent", _ago(days))
    contact("c12", "call_center", "sent", _ago(2))  # c12: 2 inside + 1 exactly at the window start
    contact("c12", "call_center", "sent", _ago(5))
    contact("c12", "call_center", "sent", _ago(30))
    contact("c13", "email", "sent", _ago(8))  # c13: 2 e-mails, 8 and 9 days ago: outside 7 days
    contact("c13", "email", "sent", _ago(9))
    contact("c14", "email", "sent", MIDNIGHT + timedelta(hours=8))  # today counts
    contact("c14", "email", "sent", _ago(6.5))
    with engine.begin() as conn:
        conn.execute(table_of(Contact).insert(), contacts)
    return engine, table, set(ids)


def _removed(engine, table, condition) -> set[str]:
    with engine.connect() as conn:
        removed = set(conn.execute(sa.select(table.c.customer_id).where(sa.not_(condition))).scalars())
        kept = conn.execute(sa.select(sa.func.count()).select_from(table).where(condition)).scalar_one()
        total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    assert kept + len(removed) == total  # never NULL: every customer is kept or removed
    return removed


def test_filters_for_email_remove_exactly_the_right_customers(world):
    engine, table, ids = world
    filters = policy_filters(POLICY, channel="email", as_of=AS_OF, customer_table=table)
    assert [name for name, _ in filters] == [
        "consent (consent_email)",
        "suppressed",
        "frequency cap 3 in 30 days",
        "frequency cap email 2 in 7 days",
        "cool-down after complaint",
    ]
    removed = {name: _removed(engine, table, condition) for name, condition in filters}
    assert removed == {
        "consent (consent_email)": {"c02", "c03"},
        "suppressed": {"c04", "c05", "c06"},
        "frequency cap 3 in 30 days": {"c08", "c12"},
        "frequency cap email 2 in 7 days": {"c09", "c14"},
        "cool-down after complaint": {"c07"},
    }
    everything = sa.and_(*(condition for _, condition in filters))
    assert ids - _removed(engine, table, everything) == {"c01", "c10", "c11", "c13", "c15"}


def test_filters_for_another_channel(world):
    engine, table, _ = world
    filters = policy_filters(POLICY, channel="call_center", as_of=AS_OF, customer_table=table)
    removed = {name: _removed(engine, table, condition) for name, condition in filters}
    assert removed == {
        "consent (consent_phone)": {"c03"},
        "suppressed": {"c04", "c07"},  # '*' and call_center entries; e-mail entries do not block calls
        "frequency cap 3 in 30 days": {"c08", "c12"},
        "cool-down after complaint": {"c07"},
    }
    # a channel without a consent column and caps: only what applies to every channel
    names = [name for name, _ in policy_filters(POLICY, channel="field_force", as_of=AS_OF, customer_table=table)]
    assert names == ["suppressed", "frequency cap 3 in 30 days", "cool-down after complaint"]


def test_cooldown_applies_even_when_complaint_does_not_block(world):
    engine, table, _ = world
    policy = PolicySpec.model_validate({"suppression": {"reasons": ["erased"]}, "cooldown": {"complaint_days": 300}})
    removed = {
        name: _removed(engine, table, c)
        for name, c in policy_filters(policy, channel="email", as_of=AS_OF, customer_table=table)
    }
    assert removed == {"suppressed": {"c15"}, "cool-down after complaint": {"c06", "c07"}}
    # the window moves with the wave date: 200 days on, only the later complaint is recent enough
    later = policy_filters(policy, channel="email", as_of=AS_OF + timedelta(days=200), customer_table=table)
    assert _removed(engine, table, dict(later)["cool-down after complaint"]) == {"c07"}


def test_caps_window_moves_with_the_wave_date(world):
    engine, table, _ = world
    filters = dict(policy_filters(POLICY, channel="email", as_of=AS_OF + timedelta(days=3), customer_table=table))
    assert _removed(engine, table, filters["frequency cap email 2 in 7 days"]) == {"c09"}  # c14's older one left
    assert _removed(engine, table, filters["frequency cap 3 in 30 days"]) == {"c08"}


def test_no_policy_no_filters(world):
    _, table, _ = world
    assert policy_filters(None, channel="email", as_of=AS_OF, customer_table=table) == []
    assert (
        policy_filters(PolicySpec(suppression={"reasons": []}), channel="email", as_of=AS_OF, customer_table=table)
        == []
    )


def test_filters_name_a_missing_consent_column(world):
    _, table, _ = world
    policy = PolicySpec.model_validate({"consent": {"email": "consent_mail"}})
    with pytest.raises(ValueError, match="consent column 'consent_mail' for channel email"):
        policy_filters(policy, channel="email", as_of=AS_OF, customer_table=table)


# --- the suppression list -------------------------------------------------------------------


def test_suppression_import_is_idempotent(engine, tmp_path):
    path = tmp_path / "unsubscribed.csv"
    path.write_text("customer_id,email\nc1,a@x\nc2,b@x\n\nc1,a@x\n,nobody@x\nc3,c@x\n")
    first = import_suppressions(engine, path, "unsubscribed")
    assert (first.rows_read, first.ids, first.added, first.already_present) == (5, 3, 3, 0)
    assert first.bad_rows == [(6, "no customer id in column 1")]
    again = import_suppressions(engine, path, "unsubscribed")
    assert (again.ids, again.added, again.already_present) == (3, 0, 3)
    plain = tmp_path / "bounces.csv"
    plain.write_text("c3\nc4\n")  # no header: every line is an id
    assert import_suppressions(engine, plain, "hard_bounce", "email").added == 2
    assert import_suppressions(engine, plain, "unsubscribed").added == 1  # c4 is new for this reason
    assert (
        add_suppressions(
            engine, [("c4", "unsubscribed"), ("c5", "complaint", "email", "event 7"), ("c5", "complaint", "email")]
        )
        == 1
    )
    assert suppression_counts(engine) == [
        ("complaint", "email", 1),
        ("hard_bounce", "email", 2),
        ("unsubscribed", "*", 4),
    ]
    assert suppression_counts(engine, "hard_bounce") == [("hard_bounce", "email", 2)]
    with engine.connect() as conn:
        sources = set(conn.execute(sa.text("select source from suppressions where reason = 'unsubscribed'")).scalars())
    assert sources == {"unsubscribed.csv", "bounces.csv"}


def test_suppression_rejects_unknown_reason(engine, tmp_path):
    with pytest.raises(ValueError, match="must be one of unsubscribed"):
        add_suppressions(engine, [("c1", "annoyed")])


# --- command line ---------------------------------------------------------------------------


@pytest.fixture
def cli(make_cli, engine):
    """``campaign suppressions ...`` and ``campaign policy ...``; ``result.text`` is the output
    without rich's boxes and wrapping."""
    from orchestrator.cli.policy import policy_app, suppressions_app

    app = typer.Typer()
    app.add_typer(suppressions_app, name="suppressions")
    app.add_typer(policy_app, name="policy")
    run = make_cli(app)

    def invoke(*args):
        result = run(*args)
        result.text = " ".join(result.output.replace("│", " ").split())  # without rich's boxes and wrapping
        return result

    return invoke


def test_cli_suppressions_and_policy_check(cli, engine, tmp_path, monkeypatch):
    path = tmp_path / "optout.csv"
    path.write_text("customer_id\nc1\nc2\n")
    result = cli("suppressions", "import", str(path), "--reason", "unsubscribed")
    assert result.exit_code == 0, result.output
    assert "added" in result.output and "c1" not in result.output
    result = cli("suppressions", "import", str(path), "--reason", "unsubscribd")
    assert result.exit_code == 2 and "did you mean 'unsubscribed'" in result.text
    result = cli("suppressions", "list")
    assert result.exit_code == 0 and "unsubscribed" in result.output and "c1" not in result.output

    # no customer table yet: the shared policy is valid, with a warning
    result = cli("policy", "check")
    assert result.exit_code == 0, result.output
    assert "not checked" in result.output and "policy.yaml: ok" in result.output

    sa.Table(
        "customers", sa.MetaData(), sa.Column("customer_id", sa.Text), sa.Column("consent_email", sa.Boolean)
    ).create(engine)
    monkeypatch.chdir(tmp_path)
    Path("policy.yaml").write_text("consent:\n  email: consent_email\n  call_center: consent_phone\n")
    result = cli("policy", "check", "policy.yaml")
    assert result.exit_code == 1
    assert "policy.yaml:3:16: consent column 'consent_phone' for call_center is not a column" in result.output
