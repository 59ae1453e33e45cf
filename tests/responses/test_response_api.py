"""The response API served by uvicorn on loopback, driven with httpx, over SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from orchestrator.demo.webhook_receiver import serve_receiver
from orchestrator.responses.api import create_app
from orchestrator.responses.link_routes import PIXEL, click_url
from orchestrator.settings import ApiSettings, ApiSource, Settings
from tests.support.responses import events_table, make_ledger, stored, suppressed

CC_SECRET = "whsec_" + base64.b64encode(b"call-center-secret-0123456789abc").decode()
ESP_SECRET = "whsec_" + base64.b64encode(b"e-mail-service-secret-0123456789").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"nobody-we-know-secret-0123456789").decode()


def api_settings(settings: Settings, **api) -> Settings:
    sources = {
        "call_center": ApiSource(secret=CC_SECRET),
        "esp": ApiSource(secret=ESP_SECRET, channels=("email",)),
    }
    return settings.model_copy(update={"api": ApiSettings(sources=sources, **({"max_batch": 50} | api))})


@pytest.fixture
def served(engine, settings):
    """(settings, ledger, httpx client on the running API)."""
    settings = api_settings(settings)
    book = make_ledger(engine, settings)
    with serve_receiver(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield settings, book, client


def signed(
    body: bytes | str, secret: str = CC_SECRET, *, at: datetime | None = None, msg_id: str | None = None
) -> dict[str, str]:
    data = body if isinstance(body, str) else body.decode()
    msg_id = msg_id or "msg_" + os.urandom(6).hex()
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, data),
        "content-type": "application/json",
    }


def post(client: httpx.Client, events: list[dict], secret: str = CC_SECRET, **kw) -> httpx.Response:
    body = json.dumps({"events": events})
    return client.post("/v1/outcomes", content=body, headers=signed(body, secret, **kw))


def event(event_id: str, ref: str, kind: str = "sale", **extra) -> dict:
    return {"event_id": event_id, "type": kind, "occurred_at": "2026-03-02T10:15:00+01:00", "outcome_ref": ref, **extra}


def test_signed_batch_accepted_and_counted_once(served, engine):
    settings, book, client = served
    events = [event("e1", book.ref("c1"), value=99.5, detail="paid by card"), event("e2", book.ref("c2"), "no_answer")]
    answer = post(client, events)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": 0,
        "items": [
            {"event_id": "e1", "status": "accepted", "reason": None},
            {"event_id": "e2", "status": "accepted", "reason": None},
        ],
    }
    rows = stored(engine)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("call_center", "e1", book.ids["c1"], "sale", 99.5),
        ("call_center", "e2", book.ids["c2"], "no_answer", None),
    ]
    assert rows[0][5] == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    # The same webhook-id again (a retry), and a new request repeating an event: nothing counted twice.
    again = post(client, events, msg_id="msg_retry")
    assert again.json()["duplicates"] == 2
    assert post(client, events, msg_id="msg_retry").json()["duplicates"] == 2
    assert len(stored(engine)) == 2


def test_bad_items_rejected_per_item(served, engine):
    settings, book, client = served
    good = book.ref("c1")
    tampered = good[:-3] + ("xyz" if not good.endswith("xyz") else "abc")
    from orchestrator.delivery.tasks import outcome_signer, task_id

    unknown = outcome_signer(settings).sign(task_id(book.wave_id, 987_654)).decode()
    answer = post(
        client,
        [
            event("ok", good, "interested"),
            event("unknown", unknown),
            event("tampered", tampered),
            event("typo", book.ref("c2"), "sael"),
            event("email", book.ref("e1"), "sale"),
            event("ok2", book.ref("c3"), "appointment"),
        ],
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 4)
    reasons = {item["event_id"]: item["reason"] for item in body["items"]}
    assert reasons["unknown"].startswith("unknown contact")
    assert reasons["tampered"].startswith("bad reference")
    assert "did you mean 'sale'" in reasons["typo"].lower()
    assert reasons["email"].startswith("contact of another channel")
    assert [r[1] for r in stored(engine)] == ["ok", "ok2"]


def test_authentication(served, engine):
    settings, book, client = served
    events = [event("x1", book.ref("c1"))]
    body = json.dumps({"events": events})
    bad = signed(body) | {"webhook-signature": "v1," + base64.b64encode(b"0" * 32).decode()}
    cases = {
        "no headers": client.post("/v1/outcomes", content=body, headers={"content-type": "application/json"}),
        "bad signature": client.post("/v1/outcomes", content=body, headers=bad),
        "garbled signature": client.post(
            "/v1/outcomes", content=body, headers=signed(body) | {"webhook-signature": "nonsense"}
        ),
        "unknown secret": post(client, events, OTHER_SECRET),
        "body changed": client.post("/v1/outcomes", content=body.replace("x1", "x2"), headers=signed(body)),
        "expired": post(client, events, at=datetime.now(UTC) - timedelta(seconds=400)),
        "future": post(client, events, at=datetime.now(UTC) + timedelta(seconds=400)),
        "unsigned malformed": client.post(
            "/v1/outcomes", content=b"{not json", headers={"content-type": "application/json"}
        ),
    }
    for name, answer in cases.items():
        assert answer.status_code == 401, name
        assert answer.json()["detail"], name
    assert "missing" in cases["no headers"].json()["detail"]
    assert "replay" in cases["expired"].json()["detail"]
    assert "signature" in cases["unknown secret"].json()["detail"]
    assert stored(engine) == []


def test_source_channels(served, engine):
    settings, book, client = served
    mail = {
        "event_id": "m1",
        "type": "hard_bounce",
        "occurred_at": "2026-03-02T10:15:00Z",
        "tracking_token": book.tracking("e2"),
    }
    # The e-mail service may report on e-mail contacts only; the call center not on e-mail contacts.
    assert post(client, [mail], ESP_SECRET).json()["accepted"] == 1
    assert (
        post(client, [event("m2", book.ref("c1"))], ESP_SECRET)
        .json()["items"][0]["reason"]
        .startswith("contact of another channel")
    )
    assert post(client, [mail], CC_SECRET).json()["rejected"] == 1
    assert suppressed(engine) == [("e2", "email", "hard_bounce")]


def test_tolerance_setting(engine, settings):
    settings = api_settings(settings, tolerance_seconds=900)  # longer than the library's fixed 5 minutes
    book = make_ledger(engine, settings)
    with serve_receiver(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        assert (
            post(client, [event("t1", book.ref("c1"))], at=datetime.now(UTC) - timedelta(seconds=600)).status_code
            == 200
        )
        assert (
            post(client, [event("t2", book.ref("c1"))], at=datetime.now(UTC) - timedelta(seconds=1000)).status_code
            == 401
        )


def test_invalid_envelopes_422(served, engine):
    settings, book, client = served
    bodies = {
        "malformed": '{"events": [',
        "not an object": "[]",
        "events not a list": json.dumps({"events": {"a": 1}}),
        "unknown key": json.dumps({"events": [event("n0", book.ref("c1"))], "extra": 1}),
        "no events": json.dumps({"events": []}),
        "over max": json.dumps({"events": [event(f"b{i}", book.ref("c1")) for i in range(51)]}),
        "deeply nested": '{"events": [' + "[" * 5000 + "]" * 5000 + "]}",
    }
    for name, body in bodies.items():
        answer = client.post("/v1/outcomes", content=body, headers=signed(body))
        assert answer.status_code == 422, (name, answer.text)
        assert answer.json()["detail"][0]["loc"][0] == "body", name
        assert "input" not in answer.json()["detail"][0], name
    assert (
        "at most 50" in client.post("/v1/outcomes", content=bodies["over max"], headers=signed(bodies["over max"])).text
    )
    assert stored(engine) == []


def test_one_bad_event_never_loses_the_batch(served, engine, caplog):
    """Problem 1 of issue 15: one event with an overflowing date, a NUL or an invalid field answered 500 and
    stored nothing (and the traceback logged the customer data in ``detail``); now each event stands alone."""
    settings, book, client = served
    personal = "Erika Mustermann, erika@example.com, +49 30 1234567"
    events = [
        event("good-1", book.ref("c1"), detail=personal),
        event("late", book.ref("c2")) | {"occurred_at": "9999-12-31T23:00:00-14:00"},
        event("early", book.ref("c2")) | {"occurred_at": "0001-01-01T00:00:00+14:00"},
        event("nul-id\u0000", book.ref("c2")),
        event("nul-detail", book.ref("c2"), detail="a\u0000b " + personal),
        event("surrogate", book.ref("c2"), detail="\ud800"),
        event("naive", book.ref("c2")) | {"occurred_at": "2026-03-02T10:15:00"},
        {"event_id": "no-ref", "type": "sale", "occurred_at": "2026-03-02T10:15:00Z"},
        event("both", book.ref("c2")) | {"tracking_token": book.tracking("e1")},
        event("long", book.ref("c2"), detail="x" * 501),
        {"type": "sale"},
        "not an object",
        event("good-2", book.ref("c3"), "appointment"),
    ]
    with caplog.at_level("DEBUG"):
        answer = post(client, events)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 11)
    items = body["items"]
    assert [i["event_id"] for i in items][:3] == ["good-1", "late", "early"]
    assert items[3]["event_id"] is None  # its event_id holds a NUL: not usable to name it
    assert all(i["status"] == "rejected" and i["reason"].startswith("invalid event") for i in items[1:-1])
    assert "occurred_at" in items[1]["reason"] and "1970" in items[1]["reason"]
    assert "NUL" in items[4]["reason"] and personal not in answer.text
    assert "exactly one" in items[8]["reason"]
    assert [r[1] for r in stored(engine)] == ["good-1", "good-2"]
    assert personal not in caplog.text


def test_database_fault_is_503_and_logs_no_personal_data(engine, settings, caplog):
    """A real database fault (a trigger refusing one row) stores nothing of the batch, answers 503 (retry
    later), and the log holds no parameter: not the customer data in ``detail`` (``hide_parameters``) nor
    the driver's message."""
    settings = api_settings(settings)
    book = make_ledger(engine, settings)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused row %%', NEW.detail; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON response_events FOR EACH ROW "
                "WHEN (NEW.event_id = 'poison') EXECUTE FUNCTION refuse()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON response_events WHEN NEW.event_id = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'refused row'); END"
            )
    personal = "Erika Mustermann erika@example.com"
    with (
        serve_receiver(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
        caplog.at_level("DEBUG"),
    ):
        answer = post(client, [event("fine", book.ref("c1"), detail=personal), event("poison", book.ref("c2"))])
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert stored(engine) == []  # nothing of the batch half-stored
    assert "database error" in caplog.text
    assert personal not in caplog.text and "refused row" not in caplog.text
    # and wherever else such an error is shown (a flow's log, a traceback), its SQL parameters are hidden
    with pytest.raises(sa.exc.DBAPIError) as raised, engine.begin() as conn:
        conn.execute(
            sa.insert(events_table),
            [
                {
                    "source": "x",
                    "event_id": "poison",
                    "contact_id": 1,
                    "wave_id": 1,
                    "customer_id": personal,
                    "type": "sale",
                    "occurred_at": datetime.now(UTC),
                    "received_at": datetime.now(UTC),
                    "detail": personal,
                }
            ],
        )
    shown = str(raised.value)  # the server's own message may quote the row (this trigger does): the API never logs it
    assert "[SQL parameters hidden due to hide_parameters=True]" in shown and "parameters: " not in shown


def test_open_pixel_counts_once(served, engine):
    settings, book, client = served
    token = book.tracking("e1")
    for _ in range(3):
        answer = client.get(f"/o/{token}.gif")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/gif"
        assert answer.content == PIXEL
    bad = client.get(f"/o/{token[:-4]}.gif")
    assert (bad.status_code, bad.content) == (200, PIXEL)
    assert [(r[0], r[2], r[3]) for r in stored(engine)] == [("links", book.ids["e1"], "open")]


def test_click_redirects_only_signed_urls(served, engine):
    settings, book, client = served
    target = "https://shop.example/offer?id=7&utm_source=mail"
    link = click_url(settings, book.tracking("e3"), target)
    assert link.startswith(settings.links.base_url)
    path = urlsplit(link)
    answer = client.get(f"{path.path}?{path.query}")
    assert answer.status_code == 303
    assert answer.headers["location"] == target
    client.get(f"{path.path}?{path.query}")  # a second click on the same link: counted once
    assert [(r[0], r[2], r[3]) for r in stored(engine)] == [("links", book.ids["e3"], "click")]

    query = parse_qs(path.query)
    tampered = client.get(path.path, params={"u": "https://evil.example/", "s": query["s"][0]})
    unsigned = client.get(path.path, params={"u": target})
    assert (tampered.status_code, unsigned.status_code) == (400, 400)
    assert "location" not in tampered.headers and "location" not in unsigned.headers
    assert len(stored(engine)) == 1
    with pytest.raises(ValueError, match="http"):
        click_url(settings, "t", "javascript:alert(1)")


def test_unsubscribe_get_changes_nothing_post_suppresses(served, engine):
    settings, book, client = served
    token = book.unsubscribe_token("e1")
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert suppressed(engine) == [] and stored(engine) == []

    done = client.post(
        f"/unsubscribe/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert suppressed(engine) == [("e1", "email", "unsubscribed")]
    assert [(r[0], r[2], r[3]) for r in stored(engine)] == [("links", book.ids["e1"], "unsubscribe")]
    assert client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert len(stored(engine)) == 1

    assert client.get(f"/unsubscribe/{token[:-3]}").status_code == 400
    assert client.post(f"/unsubscribe/{token[:-3]}", content="List-Unsubscribe=One-Click").status_code == 400
    assert client.post(f"/unsubscribe/{book.tracking('e2')}").status_code == 400
    assert len(suppressed(engine)) == 1


def test_docs_and_health(served):
    _, _, client = served
    schema = client.get("/openapi.json").json()
    assert {"/v1/outcomes", "/o/{token}.gif", "/c/{token}", "/unsubscribe/{token}", "/healthz"} <= set(schema["paths"])
    assert schema["components"]["schemas"]["EventIn"]["properties"]["event_id"]["description"]
    body = schema["paths"]["/v1/outcomes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/OutcomeBatch"}
    assert "swagger" in client.get("/docs").text.lower()
    assert client.get("/healthz").json() == {"status": "ok"}


def test_api_command_serves(tmp_path):
    """``python -m orchestrator.cli.api`` (the ``campaign api`` command) serves the app.

    The app is built from the environment's settings.
    """
    import socket
    import subprocess
    import sys
    import time

    from tests.conftest import REPO
    from tests.support import STARTUP_TIMEOUT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {
        "CAMPAIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "CAMPAIGN_PATHS_DATA_DIR": str(tmp_path / "var"),
        "CAMPAIGN_PATHS_RULES_DIR": str(REPO / "rules"),
        "CAMPAIGN_API_SOURCES__CALL_CENTER__SECRET": CC_SECRET,
        "CAMPAIGN_API_PORT": str(port),
        "PYTHONPATH": str(REPO),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.api"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "campaign api did not start"
                time.sleep(0.1)
        assert answer.json() == {"status": "ok"}
        body = json.dumps({"events": [event("x", "w1-c1.bad")]})
        assert (
            httpx.post(f"http://127.0.0.1:{port}/v1/outcomes", content=body, headers=signed(body)).json()["rejected"]
            == 1
        )
    finally:
        server.terminate()
        server.wait(timeout=STARTUP_TIMEOUT)


@pytest.mark.parametrize("blank", ["\u000b", "\x1c", "  \t "])
def test_an_erasure_of_a_blank_customer_id_is_refused_with_422(engine, settings, blank):
    """A customer id of whitespace alone (found by the schema fuzzer: a lone vertical tab) names nobody:
    422 at the envelope, the response carries no input back, nothing is erased or audited."""
    settings = api_settings(settings)
    settings.api.sources["privacy"] = ApiSource(secret=OTHER_SECRET, erase=True)
    make_ledger(engine, settings)
    body = json.dumps({"customer_ids": ["c1", blank]})
    with serve_receiver(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/v1/erasures", content=body, headers=signed(body, OTHER_SECRET))
    assert answer.status_code == 422, answer.text
    assert "not whitespace" in answer.text and "input" not in answer.json()["detail"][0]
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from audit_events")).scalar() == 0
