"""The response API's documentation: ``/docs`` and ``/redoc`` load their scripts and styles from
the package (no CDN), endpoints are grouped by tag, the request examples are valid, and the
signing examples (Python and curl, in the description and docs/response-api.md) really sign.

A real uvicorn server on loopback; the offline check also loads ``/docs`` in headless Chromium
with every host but 127.0.0.1 unresolvable, and reads the rendered Swagger UI.
"""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser

import httpx
import pytest

from orchestrator.demo.webhook_receiver import serve_receiver
from orchestrator.responses.api import create_app
from orchestrator.responses.api_docs import DOCS_ASSETS
from orchestrator.responses.api_models import OutcomeBatch
from orchestrator.responses.ingest import EventIn
from tests.conftest import REPO
from tests.responses.test_response_api import CC_SECRET, api_settings, signed
from tests.support.browser import SKIP_WITHOUT_BROWSER, TIMEOUT, chromium
from tests.support.responses import make_ledger

TAGS = {"outcomes", "privacy", "links", "health"}


@pytest.fixture
def docs_server(engine, settings):
    settings = api_settings(settings)
    make_ledger(engine, settings)
    with serve_receiver(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield server.url, client


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def _urls(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    # Swagger UI's page names the schema in its script: url: '/openapi.json'
    return parser.urls + re.findall(r"""url:\s*['"]([^'"]+)['"]""", page)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_assets_the_app_serves(docs_server, page):
    _url, client = docs_server
    answer = client.get(page)
    assert answer.status_code == 200
    urls = _urls(answer.text)
    assert any(u.endswith(".js") for u in urls)
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url} from elsewhere"
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert f"{DOCS_ASSETS}/swagger-ui-bundle.js" in urls or f"{DOCS_ASSETS}/redoc.standalone.js" in urls
    assert "cdn" not in answer.text.lower()


@SKIP_WITHOUT_BROWSER
def test_docs_render_with_the_network_disabled(docs_server):
    url, _client = docs_server
    browser = chromium()
    assert browser is not None
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            # no name resolves but loopback: a CDN URL would fail to load
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
            f"{url}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    dom = done.stdout
    assert "swagger-ui" in dom, done.stderr[-2000:]
    tags = set(re.findall(r'data-tag="([^"]+)"', dom))
    assert tags == TAGS, tags  # every endpoint under a named tag, none under "default"
    assert "Post outcomes of tasks (signed)" in dom
    assert "Signing a request" in dom  # the description, rendered from the local script


def test_endpoints_grouped_by_tag_with_valid_examples(docs_server):
    _url, client = docs_server
    schema = client.get("/openapi.json").json()
    assert {t["name"] for t in schema["tags"]} == TAGS and all(t["description"] for t in schema["tags"])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert set(operation.get("tags", [])) & TAGS, f"{method} {path} has no tag"
            assert "default" not in operation.get("tags", [])
            assert operation["responses"], f"{method} {path} documents no status code"
    outcomes = schema["paths"]["/v1/outcomes"]["post"]
    assert {"200", "401", "408", "413", "422", "429", "503"} <= set(outcomes["responses"])
    examples = outcomes["requestBody"]["content"]["application/json"]["examples"]
    assert len(examples) >= 2
    for example in examples.values():
        batch = OutcomeBatch.model_validate(example["value"])  # valid: exactly one reference per event
        assert all(isinstance(e, EventIn) for e in batch.events)
        body = httpx.Request("POST", "/", json=example["value"]).content.decode()
        answer = client.post("/v1/outcomes", content=body, headers=signed(body))
        assert answer.status_code == 200, answer.text
        for item in answer.json()["items"]:  # not stored (no such contact), but not invalid either
            assert "exactly one of" not in (item["reason"] or "")
    erasure = schema["paths"]["/v1/erasures"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert all(set(e["value"]) <= {"customer_ids", "requested_by"} for e in erasure.values())


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def _with_server(code: str, url: str) -> str:
    return code.replace("whsec_...", CC_SECRET).replace("http://127.0.0.1:8000", url)


def test_signing_examples_sign_for_real(docs_server):
    url, client = docs_server
    description = client.get("/openapi.json").json()["info"]["description"]
    guide = (REPO / "docs" / "response-api.md").read_text(encoding="utf-8")
    (python,) = [b for b in _blocks(description, "python") if "hmac" in b]
    (shell,) = _blocks(description, "bash")
    assert python in guide and shell in guide  # the guide shows the very code tested here
    code = _with_server(python, url)
    last = code.strip().splitlines()[-1]
    assert last.startswith("httpx.post(")
    code = code.replace(last, f"print({last}.text)")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert ran.returncode == 0, ran.stderr
    assert '"items"' in ran.stdout and '"rejected":1' in ran.stdout  # signature accepted; no such task
    ran = subprocess.run(["bash", "-c", _with_server(shell, url)], capture_output=True, text=True, timeout=TIMEOUT)
    assert ran.returncode == 0, ran.stderr
    assert '"items"' in ran.stdout and '"rejected":1' in ran.stdout
    wrong = subprocess.run(
        ["bash", "-c", _with_server(shell, url).replace(CC_SECRET, CC_SECRET[:-4] + "AAA=")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert "signature" in wrong.stdout.lower() and '"items"' not in wrong.stdout  # a wrong secret: 401
