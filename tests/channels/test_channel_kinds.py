"""The channel-kind contract: a kind registered at test time works end to end without touching the core.

``SMS`` below is a throw-away kind declared in this module only: text messages to phones,
delivered as signed webhook message lists (the generic ``WebhookChannel``) to the endpoint
``sms``, with a phone column, a one-part template, its own capacity pool and its own outcome
types. It is registered through ``register_kind`` (the one registry line a real kind would
add to ``KINDS``); then a rules file using it is validated, a wave is planned, recorded and
delivered to a real uvicorn receiver exactly once, and an outcome of its own type is posted
to the response API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa
from pydantic import Field

from channels.base import Outbound
from orchestrator.customers.importer import import_customers
from orchestrator.customers.table import customer_columns
from orchestrator.delivery.tasks import Contact, task_id
from orchestrator.demo.synthetic import write_csv
from orchestrator.demo.webhook_receiver import serve_receiver
from orchestrator.ledger import contacts as ledger
from orchestrator.responses.api import create_app
from orchestrator.rules.kinds import (
    KINDS,
    ChannelKind,
    ColumnKey,
    UnknownChannelKind,
    channel_kind,
    register_kind,
    unregister_kind,
)
from orchestrator.rules.outcomes import load_outcomes
from orchestrator.rules.sections import ChannelSpec, ColumnName
from orchestrator.rules.spec import CampaignSpec, ChannelsSpec
from orchestrator.settings import ApiSettings, ApiSource
from orchestrator.targeting.capacity import UNLIMITED, day_pools
from orchestrator.templates.loader import ChannelLayout, Part
from orchestrator.wave import stages
from orchestrator.wave.validation import validate_campaign
from tests.conftest import REPO
from tests.responses.test_response_api import event, signed
from tests.responses.test_responses import stored, suppressed
from tests.webhook_receiver import FAST, SECRET, TestReceiver

WAVE = "2026-12-01"
CAMPAIGN = {"name": "x", "control": {"share": 0.1}, "source": "rules/x.yaml", "sha256": "0" * 64}


class SmsChannelSpec(ChannelSpec):
    """Text messages to the customer's phone."""

    phone_column: ColumnName = Field("phone", description="Customer column with the mobile number.")


def sms_task(builder, contact: Contact, parts: dict[str, str], fields: dict) -> Outbound | str:
    """The kind's builder: the phone number is the recipient."""
    phone = contact.customer.get(builder.section.phone_column)
    if phone in (None, "") or not str(phone).strip():
        return "no phone number"
    return Outbound(contact.id, str(phone).strip(), parts, task_id(builder.wave_id, contact.id), fields=fields)


SMS = ChannelKind(
    name="sms",
    spec=SmsChannelSpec,
    description="Text messages to phones.",
    layout=ChannelLayout(parts=(Part("text", "body.txt", "the text message"),), required=(("text",),)),
    adapter="channels.webhook:WebhookChannel",
    builder=f"{__name__}:sms_task",
    outcome_types=("delivered", "replied", "opted_out"),
    outcome_classes={"response": ("replied",), "negative": ("opted_out",)},
    suppressing={"opted_out": "opted_out"},
    pool="channel",
    columns=(ColumnKey("phone_column", "phone", "text"),),
)

RULES = """\
name: sms-hello
control:
  share: 0.2
  salt: sms-test
channels:
  sms:
    template: hello
    phone_column: {phone}
    eligible: {{phone: {{is_null: false}}}}
"""


@pytest.fixture
def sms():
    kind = register_kind("sms", f"{__name__}:SMS")
    yield kind
    unregister_kind("sms")


@pytest.fixture
def workspace(tmp_path, settings):
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    folder = tmp_path / "templates" / "sms" / "hello"
    folder.mkdir(parents=True)
    (folder / "body.txt").write_text("Hi {{ first_name }}, your offer is waiting. Reply STOP to opt out.\n")
    (tmp_path / "rules" / "sms-hello.yaml").write_text(RULES.format(phone="phone"))
    return settings.model_copy(
        update={
            "paths": settings.paths.model_copy(
                update={"rules_dir": tmp_path / "rules", "templates_dir": tmp_path / "templates"}
            )
        }
    )


def test_an_unknown_kind_names_the_nearest_one(sms):
    with pytest.raises(UnknownChannelKind, match=r"No such channel kind 'emial', did you mean 'email'\?"):
        channel_kind("emial")
    with pytest.raises(UnknownChannelKind, match="did you mean 'sms'"):
        channel_kind("smss")
    with pytest.raises(LookupError, match="known kinds: 'email', 'call_center', 'field_force', 'webhook', 'sms'"):
        channel_kind("carrier_pigeon")
    with pytest.raises(ValueError, match="registered as"):
        register_kind("sms", "channels.webhook:WebhookChannel")


def test_a_registered_kind_joins_the_rules_format_and_leaves_again(sms):
    assert list(KINDS)[-1] == "sms" and channel_kind("sms") is SMS
    assert ChannelsSpec.model_fields["sms"].annotation == (SmsChannelSpec | None)
    spec = CampaignSpec.model_validate({**CAMPAIGN, "channels": {"sms": {"template": "hello"}}})
    assert spec.channels.names() == ["sms"] and spec.channels.sms.phone_column == "phone"
    assert "sms" in day_pools(UNLIMITED, {}).names  # its own pool, unlimited without a capacity section
    unregister_kind("sms")
    assert "sms" not in ChannelsSpec.model_fields
    with pytest.raises(ValueError, match="sms"):
        CampaignSpec.model_validate({**CAMPAIGN, "channels": {"sms": {"template": "hello"}}})
    register_kind("sms", f"{__name__}:SMS")  # for the fixture's teardown


def test_a_kind_must_declare_a_builder_and_known_outcome_classes():
    with pytest.raises(ValueError, match="needs a 'builder'"):
        ChannelKind("x", SmsChannelSpec, "x", SMS.layout, SMS.adapter, ("a",))
    with pytest.raises(ValueError, match="outcome_classes"):
        ChannelKind("x", SmsChannelSpec, "x", SMS.layout, SMS.adapter, ("a",), {"response": ("b",)}, builder="m:f")


def test_rules_file_with_the_kind_is_validated_against_the_customer_table(sms, workspace, engine, tmp_path):
    import_customers(engine, write_csv(tmp_path / "customers.csv", 50, seed=3))
    columns = customer_columns(engine, workspace.database.customer_table)
    path = workspace.paths.rules_dir / "sms-hello.yaml"
    check = validate_campaign(workspace, path, columns, engine)
    assert check.ok, check.problems
    assert check.task_templates["sms"].parts == ("text",)
    path.write_text(RULES.format(phone="phne"))
    check = validate_campaign(workspace, path, columns, engine)
    assert [(p.line, p.message) for p in check.problems if p.severity == "error"] == [
        (8, "phone column 'phne' is not a column of the customer table, did you mean 'phone'?")
    ]
    outcomes = load_outcomes(workspace.paths.rules_dir)
    assert outcomes.types_of("sms", "response") == {"replied"}
    assert outcomes.check("sms", "sale") == "unknown outcome type 'sale' for sms; known: delivered, replied, opted_out"


def test_a_wave_on_the_kind_is_planned_recorded_and_delivered_once(sms, workspace, engine, tmp_path):
    import_customers(engine, write_csv(tmp_path / "customers.csv", 400, seed=7))
    with TestReceiver(path="/sms") as receiver:
        settings = workspace.model_copy(
            update={"webhooks": FAST.model_copy(update={"endpoints": {"sms": receiver.endpoint}, "batch_size": 25})}
        )
        prepared = stages.prepare(settings, settings.paths.rules_dir / "sms-hello.yaml", WAVE)
        (plan,) = stages.plan(settings, [prepared], [stages.select_candidates(settings, prepared)])
        treated = plan.channel_counts["sms"]
        assert treated > 0 and set(plan.contacts.channel) == {"sms"}
        wave = stages.open_wave(settings, prepared)
        stages.record(settings, wave, plan, prepared.as_of)

        assert stages.send_pending(settings, prepared, wave) == treated
        assert stages.send_pending(settings, prepared, wave) == 0  # a re-run sends nothing again

        with engine.connect() as conn:
            c = ledger.contacts.c
            rows = conn.execute(sa.select(c.customer_id, c.arm, c.status, c.batch_id).where(c.wave_id == wave.id)).all()
        sent = {r.customer_id for r in rows if r.arm == "treatment" and r.status == "sent"}
        assert len(sent) == treated
        assert {r.status for r in rows if r.arm == "control"} == {"control"}
        assert receiver.tasks_per_customer() == Counter(dict.fromkeys(sent, 1))  # each exactly once
        lists = list(receiver.batches.values())
        assert len(lists) == -(-treated // 25) and {m.endpoint for m in lists} == {"sms"}
        message = lists[0].messages[0]
        assert message.recipient.startswith("+") and message.text.startswith("Hi ")

        # the sms system posts an outcome of the kind's own type back, and an opt-out suppresses on sms
        api = settings.model_copy(update={"api": ApiSettings(sources={"sms": ApiSource(secret=SECRET)})})
        with serve_receiver(create_app(api)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            second = lists[0].messages[1]
            events = [
                event("s1", message.outcome_ref, "replied"),
                event("s2", second.outcome_ref, "opted_out"),
                event("s3", second.outcome_ref, "sale"),
            ]
            body = json.dumps({"events": events})
            answer = client.post("/v1/outcomes", content=body, headers=signed(body, SECRET))
        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        assert [i["status"] for i in items] == ["accepted", "accepted", "rejected"]
        assert "unknown outcome type 'sale' for sms" in items[2]["reason"]
        assert [(r[0], r[1], r[3]) for r in stored(engine)] == [("sms", "s1", "replied"), ("sms", "s2", "opted_out")]
        assert suppressed(engine) == [(second.customer_id, "sms", "opted_out")]
