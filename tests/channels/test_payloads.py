"""The payload models: committed JSON Schemas match them, payloads round-trip."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from channels.payloads import (
    LIST_MODELS,
    SCHEMA_DIR,
    CallTask,
    CallTaskList,
    Message,
    MessageList,
    VisitList,
    VisitTask,
    json_schemas,
    parse_payload,
    write_schemas,
)

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
COMMON = {"campaign": "winback", "wave": "2026-03-02", "outcome_ref": "ref", "outcome_url": None}


def test_committed_schemas_match_the_models():
    expected = json_schemas()
    assert sorted(expected) == sorted(p.name for p in SCHEMA_DIR.glob("*.json")), "run: python -m channels.payloads"
    for name, text in expected.items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python -m channels.payloads"
        )


def test_write_schemas(tmp_path):
    written = write_schemas(tmp_path)
    assert [p.name for p in written] == [
        "call_center.task_list.v1.json",
        "field_force.visit_list.v1.json",
        "webhook.message_list.v1.json",
    ]


@pytest.mark.parametrize("model", LIST_MODELS, ids=lambda m: m.__name__)
def test_every_field_is_described(model):
    schema = model.model_json_schema()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        for name, prop in definition["properties"].items():
            assert prop.get("description"), f"{definition['title']}.{name} has no description"


def payloads():
    call = CallTask(
        task_id="w1.c1", customer_id=17, customer_name=None, phone="+4917000000", priority=2,
        due_from="2026-03-02", due_to=dt.date(2026, 3, 6), title="Call", script="Hello", **COMMON,
    )  # fmt: skip
    visit = VisitTask(
        task_id="w1.v1", customer_id="C1", customer_name="Shop", territory="north", priority=1,
        due_date="2026-03-09", brief="Visit", **COMMON,
    )  # fmt: skip
    message = Message(task_id="m1", customer_id="C1", recipient="C1", text="Hi", data={"offer": [1, 2]}, **COMMON)
    return [
        CallTaskList(batch_id="b1", campaign="winback", wave=20260302, created_at=NOW, tasks=[call]),
        VisitList(batch_id="b2", rep_id="rep-7", territory="north", created_at=NOW, visits=[visit]),
        MessageList(batch_id="b3", endpoint="crm", created_at=NOW, messages=[message]),
    ]


@pytest.mark.parametrize("payload", payloads(), ids=lambda p: p.type)
def test_round_trip(payload):
    body = payload.model_dump_json()
    assert parse_payload(body) == payload
    assert parse_payload(body.encode()) == payload
    data = json.loads(body)
    assert data["type"] == payload.type and data["version"] == 1


def test_ids_and_dates_are_normalised():
    call_list = payloads()[0]
    data = json.loads(call_list.model_dump_json())
    assert data["wave"] == "20260302"
    assert data["tasks"][0]["customer_id"] == "17"
    assert data["tasks"][0]["due_from"] == "2026-03-02"
    assert data["created_at"] == "2026-03-02T09:00:00Z"


def test_unknown_fields_and_versions_are_refused():
    data = json.loads(payloads()[2].model_dump_json())
    with pytest.raises(ValidationError):
        parse_payload(json.dumps({**data, "version": 2}))
    with pytest.raises(ValidationError):
        parse_payload(json.dumps({**data, "surprise": 1}))
    with pytest.raises(ValidationError):
        MessageList(batch_id="b", endpoint="e", created_at=dt.datetime(2026, 3, 2), messages=[])  # naive time
