"""Target-group selection through the real wave stages and ``campaign explain``: the funnel,
suppression, frequency caps across campaigns, blocked days and the global control group, on
SQLite and PostgreSQL, against counts computed independently in plain SQL."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from orchestrator.ledger import contacts as ledger
from orchestrator.targeting.policy import add_suppressions
from orchestrator.wave import stages
from tests.smtp_server import SmtpServer
from tests.support.targeting import (
    AUDIENCE_SQL,
    POLICY_SQL,
    WAVE,
    flat,
    in_global_control,
    ledger_rows,
    position,
    run_wave,
    select_wave,
    sql_ids,
    write_rules,
)


@pytest.fixture
def settings(policy_settings):
    """The tests here run under the test contact policy (``tests.support.targeting.POLICY``)."""
    return policy_settings


def _treated(selection) -> list[str]:
    contacts = selection.contacts
    return [cid for cid, arm in zip(contacts.customer_id, contacts.arm, strict=True) if arm == "treatment"]


def test_explain_funnel_matches_sql_counts_and_the_selection(settings, customers, cli):
    eligible = sql_ids(customers, AUDIENCE_SQL + POLICY_SQL[:1])
    add_suppressions(customers, [(cid, "unsubscribed", "*") for cid in sorted(eligible)[:7]])
    rules = write_rules(settings, "funnel", variants={"a": {"share": 0.5}, "b": {"share": 0.5}})

    sql_steps = [
        sql_ids(customers, AUDIENCE_SQL[:i] + POLICY_SQL[:j])
        for i, j in ((1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (3, 3))
    ]
    after_policy = sql_steps[-1]
    candidates = [cid for cid in after_policy if not in_global_control(cid)]
    treated = [cid for cid in candidates if position("funnel", cid) >= 0.1]
    variant_a = [cid for cid in treated if position("funnel:variant", cid) < 0.5]
    expected = [
        ("customers", "customer table", 3000),
        *(("audience", None, len(ids)) for ids in sql_steps[:3]),
        ("policy", "consent (consent_email)", len(sql_steps[3])),
        ("policy", "suppressed", len(sql_steps[4])),
        ("policy", "frequency cap 2 in 30 days", len(sql_steps[5])),
        ("global control", "held out of every campaign", len(candidates)),
        ("control", "random control group (10%) held out", len(treated)),
        ("variant", "variant a", len(variant_a)),
        ("variant", "variant b", len(treated) - len(variant_a)),
    ]
    assert len(sql_steps[3]) - len(sql_steps[4]) == 7  # every suppressed customer was eligible

    _prepared, _candidates, explained = select_wave(settings, rules, funnel=True)
    funnel = [(s.stage, s.label, s.remaining) for s in explained.funnel]
    assert [(stage, None if stage == "audience" else label, n) for stage, label, n in funnel] == expected
    assert [label for stage, label, _ in funnel if stage == "audience"] == [
        "{email: {is_null: false}}",
        "{recency_days: {between: [60, 365]}}",
        "{segment: {in: [gold, silver]}}",
    ]
    assert all(
        s.removed == prev.remaining - s.remaining
        for prev, s in itertools.pairwise(explained.funnel)
        if s.stage != "variant"
    )

    # The selection of a real run (no funnel) treats exactly the customers the funnel ends with.
    _prepared, _candidates, selection = select_wave(settings, rules)
    assert _treated(selection) == treated and selection.count("treatment") == expected[-3][2]
    assert selection.count("control") == len(candidates) - len(treated)
    assert selection.count("global_control") == len(after_policy) - len(candidates)

    result = cli("explain", rules, "--wave", WAVE)
    assert result.exit_code == 0, result.output
    table = _table_rows(result.output)
    assert [(stage, remaining) for stage, _label, _removed, remaining in table] == [
        (s, f"{n:,}") for s, _l, n in funnel
    ]
    assert [row[1] for row in table if row[0] != "audience"] == [label for s, label, _n in funnel if s != "audience"]


def _table_rows(output: str) -> list[list[str]]:
    """The cells of each body row of the funnel table (4 columns) in ``output``."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]
    return [row for row in rows if len(row) == 4]


def test_explain_prints_audience_conditions_verbatim(settings, customers, cli):
    result = cli("explain", write_rules(settings, "labels"), "--wave", WAVE)
    assert [row[1] for row in _table_rows(result.output) if row[0] == "audience"] == [
        "{email: {is_null: false}}",
        "{recency_days: {between: [60, 365]}}",
        "{segment: {in: [gold, silver]}}",
    ]


def test_suppressed_customers_are_never_selected(settings, customers):
    rules = write_rules(settings, "suppress", policy={"suppression": {"reasons": ["unsubscribed", "hard_bounce"]}})
    _prepared, _candidates, before = select_wave(settings, rules)
    email_only, everywhere, sms_only, erased, *_ = _treated(before)
    assert (
        add_suppressions(
            customers,
            [
                (email_only, "unsubscribed", "email"),
                (everywhere, "hard_bounce", "*"),
                (sms_only, "unsubscribed", "sms"),  # another channel: no effect on e-mail
                (erased, "erased", "*"),  # a reason this campaign's policy does not block
            ],
        )
        == 4
    )

    _prepared, _candidates, after = select_wave(settings, rules, funnel=True)
    assert set(after.contacts.customer_id) == set(before.contacts.customer_id) - {email_only, everywhere}
    arms_before = dict(zip(before.contacts.customer_id, before.contacts.arm, strict=True))
    assert all(arms_before[cid] == arm for cid, arm in zip(after.contacts.customer_id, after.contacts.arm, strict=True))
    step = next(s for s in after.funnel if s.label == "suppressed")
    assert step.removed == 2

    _prepared, _selection, ref = run_wave(settings, rules)
    recorded = {row.customer_id for row in ledger_rows(customers, ref.id)}
    assert recorded == set(after.contacts.customer_id) and not recorded & {email_only, everywhere}


def test_frequency_cap_counts_sent_and_control_contacts_of_every_campaign(settings, customers):
    audience = [{"segment": "gold"}, {"email": {"is_null": False}}]
    one, two, three = (write_rules(settings, name, audience=audience) for name in ("cap-one", "cap-two", "cap-three"))
    _prepared, _candidates, base = select_wave(settings, three, "2026-11-26")
    with customers.connect() as conn:
        emails = dict(conn.execute(sa.text("select customer_id, email from customers")).all())
    _prepared, _candidates, first = select_wave(settings, one, "2026-11-24")
    rejected = _treated(first)[:3]  # permanently failed in both waves: never 'sent'
    invalid = _treated(first)[3:6]  # skipped in both waves
    with customers.begin() as conn:
        conn.execute(
            sa.text("update customers set email = 'no-address' where customer_id in :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": invalid},
        )
    # a content rejection, not a hard bounce (which would suppress the address for wave two)
    with SmtpServer(reject_with={emails[cid]: "554 5.7.1 message refused" for cid in rejected}) as smtp:
        run_wave(settings, one, "2026-11-24", smtp=smtp)
        run_wave(settings, two, "2026-11-25", smtp=smtp)
        received = len(smtp.received)

    rows = ledger_rows(customers)
    sent = Counter(row.customer_id for row in rows if row.status == "sent")
    assert received == sum(sent.values())
    # sent contacts count, and so do the random control group's "virtual contacts": caps then filter
    # treated and control customers alike and later waves' control groups stay comparable
    counted = Counter(row.customer_id for row in rows if row.status == "sent" or row.arm == "control")
    at_cap = {cid for cid, n in counted.items() if n >= 2}
    assert {cid for cid, n in sent.items() if n >= 2} < at_cap  # some reached it as control customers
    contacted_twice = {cid for cid, n in Counter(row.customer_id for row in rows).items() if n == 2}
    statuses = {row.status for row in rows if row.customer_id in contacted_twice - at_cap}
    assert {"failed", "skipped"} <= statuses  # in both waves, but never delivered: not at the cap

    _prepared, _candidates, third = select_wave(settings, three, "2026-11-26", funnel=True)
    assert set(third.contacts.customer_id) == set(base.contacts.customer_id) - at_cap
    assert set(rejected + invalid) <= set(third.contacts.customer_id)
    step = next(s for s in third.funnel if s.label == "frequency cap 2 in 30 days")
    assert step.removed == len(at_cap)
    # A wave dated after the window (a Monday over 30 days from now) no longer counts those contacts.
    later_day = date.today() + timedelta(days=31 + (7 - (date.today() + timedelta(days=31)).weekday()) % 7)
    _prepared, _candidates, later = select_wave(settings, three, later_day.isoformat())
    assert set(later.contacts.customer_id) == set(base.contacts.customer_id)


def test_blocked_day_selects_and_records_nothing(settings, customers, cli):
    rules = write_rules(settings, "blocked")
    for key, reason in (
        ("2026-11-29", "2026-11-29 is a Sunday, a blocked weekday"),
        ("2026-12-24", "2026-12-24 is a blocked date"),
    ):
        prepared = stages.prepare(settings, rules, key)
        with pytest.raises(stages.WaveBlocked, match=reason):
            stages.select_candidates(settings, prepared)
        with pytest.raises(stages.WaveBlocked, match=reason):
            stages.open_wave(settings, prepared)  # the flow opens the wave before it selects

    result = cli("explain", rules, "--wave", "2026-11-29")
    assert result.exit_code == 1
    assert "2026-11-29 is a Sunday, a blocked weekday in the contact policy" in flat(result.output)
    with customers.connect() as conn:
        for table in (ledger.campaigns, ledger.waves, ledger.contacts):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
    assert cli("explain", rules, "--wave", "2026-11-30").exit_code == 0  # the Monday after


def test_global_control_is_recorded_never_sent_and_the_same_in_every_campaign(settings, customers):
    gold = write_rules(settings, "gc-gold", audience=[{"segment": "gold"}, {"email": {"is_null": False}}])
    regions = write_rules(settings, "gc-regions", audience=[{"region": {"in": ["North", "South", "West"]}}])
    with SmtpServer() as smtp:
        _p, _s, gold_wave = run_wave(settings, gold, smtp=smtp)
        recipients = set(smtp.recipients)
    _p, _s, regions_wave = run_wave(settings, regions)

    with customers.connect() as conn:
        emails = dict(conn.execute(sa.text("select customer_id, email from customers")).all())
    held_out = {}
    for ref, audience in (
        (gold_wave, ["segment = 'gold'", "email is not null"]),
        (regions_wave, ["region in ('North', 'South', 'West')"]),
    ):
        rows = ledger_rows(customers, ref.id)
        eligible = sql_ids(customers, audience + POLICY_SQL[:2])
        global_rows = [row for row in rows if row.arm == "global_control"]
        held_out[ref.id] = {row.customer_id for row in global_rows}
        assert held_out[ref.id] == {cid for cid in eligible if in_global_control(cid)}
        assert {row.customer_id for row in rows} == set(eligible)
        assert all(row.status == "control" and row.variant is None and row.score is None for row in global_rows)

    both = {row.customer_id for row in ledger_rows(customers, gold_wave.id)} & {
        row.customer_id for row in ledger_rows(customers, regions_wave.id)
    }
    assert len(held_out[gold_wave.id] & both) >= 3
    assert held_out[gold_wave.id] & both == held_out[regions_wave.id] & both
    gold_rows = ledger_rows(customers, gold_wave.id)
    assert {r.status for r in gold_rows if r.arm == "treatment"} <= {"sent", "skipped"}
    assert recipients and not recipients & {emails[cid] for cid in held_out[gold_wave.id]}
