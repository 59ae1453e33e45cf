"""Target-group selection by score with a stratified control group, A/B variants end to end,
and the ``campaign preview`` and ``campaign validate`` commands, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from orchestrator.scoring import registry as model_registry
from orchestrator.scoring.response import train_response_model
from orchestrator.success.power import required_control_size
from tests.smtp_server import SmtpServer
from tests.support.targeting import (
    AUDIENCE_SQL,
    POLICY_SQL,
    WAVE,
    copy_template,
    flat,
    in_global_control,
    ledger_rows,
    position,
    run_wave,
    select_wave,
    sql_ids,
    write_rules,
)

B_SUBJECT = "A different offer for {{ first_name }}"
VARIANTS = {"a": {"share": 0.5}, "b": {"share": 0.5, "template": "winback-b"}}


@pytest.fixture
def settings(policy_settings):
    """The tests here run under the test contact policy (``tests.support.targeting.POLICY``)."""
    return policy_settings


def _customer_frame(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text("select customer_id, revenue_12m, recency_days from customers order by customer_id"), conn
        )


def test_score_cut_keeps_the_best_and_stratifies_the_control_group(settings, customers):
    frame = _customer_frame(customers)
    logit = -1.0 + 1.5 * np.log(frame.revenue_12m / 500) - frame.recency_days / 100
    frame["responded"] = (np.random.default_rng(5).random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    trained = train_response_model(frame, "responded")
    assert trained.model.features_ == ["revenue_12m", "recency_days"]
    model_registry.register(
        customers,
        settings,
        "response",
        trained.model,
        trained.metrics,
        trained.fingerprint,
        trained.target,
        trained.rows,
    )
    rules = write_rules(
        settings,
        "scored",
        scores={"model": "response", "top_percent": 20},
        control={"share": 0.2, "stratify_by_score": True},
    )

    eligible = [cid for cid in sql_ids(customers, AUDIENCE_SQL + POLICY_SQL) if not in_global_control(cid)]
    scored = frame.set_index("customer_id").loc[eligible].reset_index()
    scored["score"] = trained.model.score_frame(scored)
    best = scored.sort_values(["score", "customer_id"], ascending=[False, True]).head(math.ceil(len(eligible) * 0.2))

    _prepared, _candidates, explained = select_wave(settings, rules, funnel=True)
    assert [(s.stage, s.label, s.remaining) for s in explained.funnel[-3:]] == [
        ("global control", "held out of every campaign", len(eligible)),
        ("score", "model response, top 20%", len(best)),
        ("control", "random control group (20%) held out", len(best) - explained.count("control")),
    ]
    _prepared, selection, ref = run_wave(settings, rules)
    rows = ledger_rows(customers, ref.id)
    kept = {r.customer_id: r for r in rows if r.arm != "global_control"}
    assert set(kept) == set(best.customer_id)
    expected_scores = dict(zip(best.customer_id, best.score, strict=True))
    assert all(r.score == pytest.approx(expected_scores[cid], abs=1e-9) for cid, r in kept.items())
    assert all(r.score is None for r in rows if r.arm == "global_control")

    # Within every score decile, exactly round(share * n) customers are control.
    ordered = sorted(r.score for r in kept.values())
    decile = {cid: 10 * sum(s < r.score for s in ordered) // len(ordered) for cid, r in kept.items()}
    for d in range(10):
        members = [kept[cid] for cid, dd in decile.items() if dd == d]
        control = sum(r.arm == "control" for r in members)
        assert control == math.floor(0.2 * len(members) + 0.5), d
        assert abs(control / len(members) - 0.2) <= 0.5 / len(members)
    assert selection.count("control") == sum(r.arm == "control" for r in kept.values())


def test_variants_split_the_treated_and_each_gets_its_template(settings, customers):
    copy_template(settings, "winback-b", B_SUBJECT)
    rules = write_rules(settings, "ab-test", variants=VARIANTS)
    with SmtpServer() as smtp:
        _prepared, _selection, ref = run_wave(settings, rules, smtp=smtp)
        messages = smtp.messages
    rows = ledger_rows(customers, ref.id)
    treated = [r for r in rows if r.arm == "treatment"]
    assert all(r.variant is None for r in rows if r.arm != "treatment")
    assert all(r.variant == ("a" if position("ab-test:variant", r.customer_id) < 0.5 else "b") for r in treated)
    assert 0.4 < sum(r.variant == "b" for r in treated) / len(treated) < 0.6

    variant_of = {r.id: r.variant for r in rows}
    subjects = {"a": [], "b": []}
    for message in messages:
        contact_id = int(re.match(rf"<w{ref.id}\.c(\d+)\.", message["Message-ID"]).group(1))
        subjects[variant_of[contact_id]].append(message["Subject"])
    assert len(messages) == sum(r.status == "sent" for r in treated)
    assert subjects["a"] and all(re.fullmatch(r"\w+, we miss you: €\d+ to welcome you back", s) for s in subjects["a"])
    assert subjects["b"] and all(re.fullmatch(r"A different offer for \w+", s) for s in subjects["b"])
    assert len(subjects["b"]) == sum(r.status == "sent" and r.variant == "b" for r in treated)


def test_preview_writes_n_messages_per_variant(settings, customers, cli, tmp_path):
    copy_template(settings, "winback-b", B_SUBJECT)
    rules = write_rules(settings, "preview-ab", variants=VARIANTS)
    _prepared, _candidates, selection = select_wave(settings, rules)
    output = tmp_path / "out" / "preview.html"

    result = cli("preview", rules, "--n", 2, "--wave", WAVE, "--output", output)
    assert result.exit_code == 0, result.output
    page = output.read_text()
    assert page.count("<iframe sandbox srcdoc=") == 4
    for variant in ("a", "b"):
        first_two = sorted(
            cid
            for cid, v in zip(selection.contacts.customer_id, selection.contacts.variant, strict=True)
            if v == variant
        )[:2]
        assert re.findall(rf"<h2>email: customer (\w+), variant {variant}</h2>", page) == first_two
    assert page.count("A different offer for ") == 2 and page.count("we miss you: €") == 2
    assert "4 message(s) written to" in flat(result.output)


def test_preview_fails_naming_the_template_line_that_fails_at_render_time(settings, customers, cli, tmp_path):
    folder = settings.paths.templates_dir / "email" / "revenue"
    folder.mkdir()
    (folder / "subject.txt").write_text("Your year with us\n")
    (folder / "body.txt").write_text("Dear {{ first_name }},\n\nyou spent {{ revenue_12m | money }} this year.\n")
    with customers.begin() as conn:
        conn.execute(sa.text("update customers set revenue_12m = null where customer_id <= 'C0000300'"))
    rules = write_rules(settings, "revenue", template="revenue")
    output = tmp_path / "preview.html"

    result = cli("preview", rules, "--n", 2, "--wave", WAVE, "--output", output)
    assert result.exit_code == 1
    text = flat(result.output)
    assert f"{folder / 'body.txt'}:3: money: expected a number, got None" in text
    assert output.read_text().count('class="error"') == 2


def test_validate_warns_when_the_control_group_is_too_small(settings, customers, cli):
    rules = write_rules(
        settings, "small-control", control={"share": 0.01, "expected_response_rate": 0.05, "min_detectable_lift": 0.01}
    )
    needed = required_control_size(0.05, 0.01, 0.01)
    result = cli("validate", rules)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert f"{rules}: warning: the control group of " in text
    assert (
        "is too small to detect a lift of 1.0 point over a 5.0% response rate "
        f"(needs {needed:,} at 5% significance and 80% power)" in text
    )
    assert f"{rules}: ok" in text

    wide = write_rules(
        settings, "wide-control", control={"share": 0.5, "expected_response_rate": 0.05, "min_detectable_lift": 0.2}
    )
    result = cli("validate", wide)
    assert result.exit_code == 0 and "warning" not in result.output


def test_preview_links_act_on_no_real_customer(settings, customers, cli, tmp_path):
    """Problem 4 of issue 15: the unsubscribe link of a `campaign preview` page carried a valid token of the
    real customer, and POSTing it suppressed that customer. Now preview links use the preview key: the
    API answers with a page saying it is a preview (403) and changes nothing."""
    import httpx

    from orchestrator.demo.webhook_receiver import serve_receiver
    from orchestrator.responses.api import create_app

    rules = write_rules(settings, "preview-links")
    output = tmp_path / "preview.html"
    assert cli("preview", rules, "--n", 2, "--wave", WAVE, "--output", output).exit_code == 0
    page = output.read_text()
    assert output.stat().st_mode & 0o777 == 0o600  # a preview shows customers' data: its owner's alone
    tokens = set(re.findall(r"/unsubscribe/([A-Za-z0-9_-]+)", page))
    clicks = set(re.findall(r"/c/([A-Za-z0-9_-]+)\?u=([^&\"]+)&amp;s=([A-Za-z0-9_-]+)", page))
    assert tokens and clicks
    with serve_receiver(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        for token in tokens:
            for answer in (client.get(f"/unsubscribe/{token}"), client.post(f"/unsubscribe/{token}")):
                assert answer.status_code == 403 and "preview" in answer.text
        for token, target, signature in clicks:
            answer = client.get(f"/c/{token}", params={"u": target, "s": signature})
            assert answer.status_code == 403 and "preview" in answer.text and "location" not in answer.headers
    with customers.connect() as conn:
        assert conn.execute(sa.text("select count(*) from suppressions")).scalar_one() == 0
        assert conn.execute(sa.text("select count(*) from response_events")).scalar_one() == 0
