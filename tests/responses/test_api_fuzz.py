"""Fuzzing the response API over its own OpenAPI schema (schemathesis + hypothesis), requests signed.

Every operation of ``/openapi.json`` gets generated requests, valid and invalid, against the app
served by uvicorn on loopback over a real database. The signed endpoints get requests signed with
a source's secret (so the fuzzing reaches past the signature check into parsing and storing);
the link endpoints get generated tokens. Checked for every answer: no 5xx, the status code is
documented in the schema, and the body matches its documented schema and content type.
Bounded: ``EXAMPLES`` per operation, no deadline (the machine may be slow).
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.demo.webhook_receiver import serve_receiver
from orchestrator.responses.api import create_app
from orchestrator.settings import ApiSettings, ApiSource, DatabaseSettings, PathSettings, Settings
from tests.responses.test_response_api import CC_SECRET, signed
from tests.support import REPO
from tests.support.responses import make_ledger

EXAMPLES = 60
SIGNED = {"/v1/outcomes", "/v1/erasures"}


def _app_settings(tmp_path) -> Settings:
    return Settings(
        paths=PathSettings(rules_dir=REPO / "rules", data_dir=tmp_path / "var"),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'fuzz.db'}"),
        api=ApiSettings(
            sources={"call_center": ApiSource(secret=CC_SECRET, erase=True)}, max_batch=50, source_rate=100_000
        ),
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The API on loopback over a SQLite database with a small ledger: (base url, settings)."""
    from orchestrator.db import engine as database

    folder = tmp_path_factory.mktemp("fuzz")
    settings = _app_settings(folder)
    make_ledger(database.connect(settings), settings)
    with serve_receiver(create_app(settings)) as server:
        yield server.url
    database.dispose_all()


def _schema() -> schemathesis.schemas.BaseSchema:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:  # the schema only: an app over a throw-away database
        from orchestrator.db import engine as database

        document = create_app(_app_settings(Path(folder))).openapi()
        database.dispose_all()
    loaded = schemathesis.openapi.from_dict(document)
    # valid and invalid requests, NUL characters included
    loaded.config.generation.update(modes=list(schemathesis.GenerationMode), allow_x00=True)
    return loaded


schema = _schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_no_server_error_and_every_answer_documented(case, served):
    kwargs = case.as_transport_kwargs(base_url=served)
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if v is not None}
    body: bytes | None = None
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body = data if isinstance(data, bytes) else str(data).encode()
    if case.path in SIGNED and body is not None:
        try:
            headers |= signed(body.decode())
        except UnicodeDecodeError:  # Standard Webhooks signs text: such a body is sent unsigned (401)
            pass
    with httpx.Client(timeout=60) as client:
        response = client.request(
            kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers, content=body
        )
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
