"""The e-mail's tracked links: ``GET /o/{token}.gif`` (open pixel) and ``GET /c/{token}`` (click).

``click_url(settings, tracking_token, url)`` makes a tracked link (``u`` signed with the link secret,
salt ``click``). ``link_routes(app, engine, settings, outcomes)`` adds the routes: the pixel records
``open`` once per contact and always answers ``PIXEL``; a click records ``click`` once per contact and
URL and redirects (303) only to a signed ``u`` or one on ``CAMPAIGN_API_CLICK_HOSTS`` (else 400, a
preview's link 403). Events are recorded under ``LINKS_SOURCE`` for the channels of ``link_channels()``; a
failed recording is logged (``faults``) and never fails the recipient.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from itsdangerous import Signer

from orchestrator.delivery.messages import read_tracking_token
from orchestrator.responses.faults import log_fault
from orchestrator.responses.ingest import LINKS_SOURCE, EventIn, ingest
from orchestrator.responses.pages import PREVIEW_PAGE, page, page_answer
from orchestrator.rules.kinds import kinds
from orchestrator.rules.outcomes import Outcomes
from orchestrator.settings import Settings
from orchestrator.templates.links import InvalidLinkToken, PreviewLinkToken, click_link, click_signer
from orchestrator.templates.links import is_http_url as _http_url

__all__ = ["PIXEL", "click_url", "link_channels", "link_routes"]


def link_channels() -> tuple[str, ...]:
    """The channels whose messages carry the tracked links this API serves (``ChannelKind.links``: e-mail)."""
    return tuple(kind.name for kind in kinds() if kind.links)


PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1x1 transparent GIF."""


def _click_signer(settings: Settings) -> Signer:
    return click_signer(settings.link_secret())


def click_url(settings: Settings, tracking_token: str, url: str) -> str:
    """A tracked link to ``url`` for an e-mail template: ``{base}/c/{token}?u=<url>&s=<signature of url>``.

    Raises ``ValueError`` unless ``url`` is an absolute http(s) URL.
    """
    return click_link(_click_signer(settings), settings.links.base_url, tracking_token, url)


def link_routes(app: FastAPI, engine: sa.Engine, settings: Settings, outcomes: Outcomes) -> None:
    """``GET /o/{token}.gif`` (open pixel) and ``GET /c/{token}`` (tracked link) of the e-mails."""
    api = settings.api
    clicks = _click_signer(settings)

    def _record_link(token: str, kind: str, event_id: str) -> None:
        event = EventIn(event_id=event_id, type=kind, occurred_at=datetime.now(UTC), tracking_token=token)
        ingest(engine, LINKS_SOURCE, [event], settings=settings, outcomes=outcomes, allowed_channels=link_channels())

    def _tracked(token: str) -> tuple[int, int] | InvalidLinkToken:
        try:
            return read_tracking_token(settings, token)
        except InvalidLinkToken as exc:
            return exc

    @app.get(
        "/o/{token}.gif",
        summary="Open pixel",
        tags=["links"],
        response_class=Response,
        responses={200: {"content": {"image/gif": {}}, "description": "A 1x1 transparent GIF, always."}},
    )
    def open_pixel(token: str) -> Response:
        """Records an `open` of the e-mail (once per contact) and answers a transparent GIF, whatever the token."""
        ids = _tracked(token)
        if isinstance(ids, tuple):
            try:
                _record_link(token, "open", f"open-w{ids[0]}-c{ids[1]}")
            except Exception as exc:  # noqa: BLE001 - the pixel never fails the recipient's mail client
                log_fault(f"open pixel: recording failed (contact {ids[1]})", exc)
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})

    @app.get(
        "/c/{token}",
        summary="Tracked link",
        tags=["links"],
        status_code=303,
        response_class=RedirectResponse,
        responses={
            303: {"description": "Redirect to u (recorded as a click unless the link expired)."},
            400: page_answer("u is not signed: no redirect."),
            403: page_answer("A link of a preview or dry run: no redirect, nothing recorded."),
        },
    )
    def click(token: str, u: str = "", s: str = "") -> Response:
        """Records a `click` (once per contact and URL) and redirects to `u` when `s` signs it (see `click_url`)."""
        ids = _tracked(token)
        if isinstance(ids, PreviewLinkToken):
            return page("This is a preview", PREVIEW_PAGE, 403)
        signed = bool(u and s) and clicks.verify_signature(u.encode(), s.encode())
        allowed = signed or (bool(api.click_hosts) and _http_url(u) and urlsplit(u).hostname in api.click_hosts)
        if not allowed or not _http_url(u):
            return page(
                "This link is not valid",
                "<p>The link was changed or cut. Please use the link in the e-mail as it is.</p>",
                400,
            )
        if isinstance(ids, tuple):
            digest = hashlib.sha256(u.encode()).hexdigest()[:16]
            try:
                _record_link(token, "click", f"click-w{ids[0]}-c{ids[1]}-{digest}")
            except Exception as exc:  # noqa: BLE001 - the recipient still gets where the link leads
                log_fault(f"click: recording failed (contact {ids[1]})", exc)
        return RedirectResponse(u, status_code=303, headers={"Cache-Control": "no-store"})
