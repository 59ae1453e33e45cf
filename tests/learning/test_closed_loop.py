"""The loop end to end: a cycle sends e-mails and call tasks; the call center posts outcomes to the
response API with the task's outcome reference; a recipient clicks a tracked link and
unsubscribes in one click; the success report counts what came back.

Real parts throughout: the Prefect flow, an aiosmtpd server, a uvicorn task-list receiver, the
response API served by uvicorn, SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from orchestrator.demo.webhook_receiver import serve_receiver
from orchestrator.responses.api import create_app
from orchestrator.settings import ApiSettings, ApiSource
from orchestrator.success.campaign import build_campaign_report
from tests.support.wave import run_cycle

CC_SECRET = "whsec_" + base64.b64encode(b"call-center-outcomes-secret-0123").decode()


@pytest.mark.slow
def test_outcomes_and_link_events_flow_back_into_the_success_report(run_settings, cycle_customers, receivers, smtp):
    calls, _visits = receivers
    run_cycle(run_settings, "retention-multichannel")
    settings = run_settings.model_copy(
        update={"api": ApiSettings(sources={"call_center": ApiSource(secret=CC_SECRET)})}
    )
    tasks = [task for batch in calls.batches.values() for task in batch.tasks]
    sold = tasks[:20]
    events = [
        {
            "event_id": f"cc-{i}",
            "type": "sale",
            "value": 120.0,
            "occurred_at": "2026-11-25T10:00:00+00:00",
            "outcome_ref": t.outcome_ref,
        }
        for i, t in enumerate(sold)
    ] + [
        {
            "event_id": "cc-x",
            "type": "sael",
            "occurred_at": "2026-11-25T10:00:00+00:00",
            "outcome_ref": tasks[-1].outcome_ref,
        }
    ]
    body = json.dumps({"events": events})
    msg_id, now = "msg_" + os.urandom(6).hex(), datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(CC_SECRET).sign(msg_id, now, body),
        "content-type": "application/json",
    }

    with serve_receiver(create_app(settings)) as api, httpx.Client(base_url=api.url, timeout=30) as client:
        receipt = client.post("/v1/outcomes", content=body, headers=headers).raise_for_status().json()
        assert receipt["accepted"] == 20 and receipt["rejected"] == 1
        assert "did you mean 'sale'" in receipt["items"][-1]["reason"]

        mail = BytesParser(policy=policy.default).parsebytes(smtp.received[0].raw)
        html = mail.get_body(("html",)).get_content()
        link = re.search(r'href="(http[^"]+/c/[^"]+)"', html).group(1).replace("&amp;", "&")
        tracked = client.get(link.replace(settings.links.base_url.rstrip("/"), ""), follow_redirects=False)
        assert tracked.status_code == 303 and tracked.headers["location"].startswith(
            "https://www.acme.example/welcome-back"
        )
        unsubscribe = (
            mail["List-Unsubscribe"].split(",")[0].strip("<> ").replace(settings.links.base_url.rstrip("/"), "")
        )
        assert (
            client.post(
                unsubscribe,
                content="List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ).status_code
            == 200
        )

    with cycle_customers.connect() as conn:
        kinds = dict(conn.execute(sa.text("select type, count(*) from response_events group by type")).all())
        suppressed = conn.execute(
            sa.text("select count(*) from suppressions where reason = 'unsubscribed'")
        ).scalar_one()
    assert kinds == {"sale": 20, "click": 1, "unsubscribe": 1} and suppressed == 1

    # revenue from the sales' values rather than imported conversions (success.value in the rules file)
    rules = settings.paths.rules_dir / "retention-multichannel.yaml"
    rules.write_text(rules.read_text().replace("  window_days: 45", "  window_days: 45\n  value: outcomes"))
    report = build_campaign_report(settings, "retention-multichannel")
    by_channel = {s.key: s for s in report.segments if s.dimension == "channel"}
    assert by_channel["call_center"].treated_successes == 20
    assert by_channel["call_center"].revenue_per_treated.value * by_channel["call_center"].treated == pytest.approx(
        20 * 120.0
    )
    assert by_channel["call_center"].cost == by_channel["call_center"].treated * 6.0  # rules: call_center cost 6
