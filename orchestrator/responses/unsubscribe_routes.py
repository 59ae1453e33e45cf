"""``GET /unsubscribe/{token}`` (confirmation page) and ``POST`` (RFC 8058 one-click unsubscribe).

``unsubscribe_routes(app, engine, settings)`` adds both: the GET shows a page with a POST form and
changes nothing (link scanners follow GETs); the POST suppresses the customer for e-mail and records
an ``unsubscribe`` event (``ingest.unsubscribe``), idempotent. A bad token answers 400, a preview's
403, an expired one (``CAMPAIGN_LINKS_UNSUBSCRIBE_DAYS``) 410, each with a page saying so.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from orchestrator.responses.api_docs import BODY_ANSWERS
from orchestrator.responses.ingest import InvalidUnsubscribeToken, read_unsubscribe_token, unsubscribe
from orchestrator.responses.pages import PREVIEW_PAGE, page, page_answer
from orchestrator.settings import Settings
from orchestrator.templates.links import ExpiredLinkToken, InvalidLinkToken, PreviewLinkToken

__all__ = ["unsubscribe_routes"]


def unsubscribe_routes(app: FastAPI, engine: sa.Engine, settings: Settings) -> None:
    """``GET /unsubscribe/{token}`` (confirmation page) and ``POST`` (RFC 8058 one-click)."""
    invalid_unsubscribe = "<p>This unsubscribe link was changed or cut. Please use the link in the e-mail as it is.</p>"
    expired = (
        "<p>This unsubscribe link has expired. Please use the link in a more recent e-mail, "
        "or reply to the e-mail and ask us to stop.</p>"
    )

    def _refusal(exc: InvalidLinkToken) -> HTMLResponse:
        if isinstance(exc, PreviewLinkToken):
            return page("This is a preview", PREVIEW_PAGE, 403)
        if isinstance(exc, ExpiredLinkToken):
            return page("This link has expired", expired, 410)
        return page("This link is not valid", invalid_unsubscribe, 400)

    answers: dict[int | str, dict[str, Any]] = {
        400: page_answer("The token was altered or cut."),
        403: page_answer("A link of a preview or dry run: nothing changes."),
        410: page_answer("The link is older than CAMPAIGN_LINKS_UNSUBSCRIBE_DAYS."),
    }

    @app.get(
        "/unsubscribe/{token}",
        summary="Unsubscribe: confirmation page",
        tags=["links"],
        response_class=HTMLResponse,
        responses=answers,
    )
    def unsubscribe_page(token: str) -> HTMLResponse:
        """A page with a button that unsubscribes (POST); the GET itself changes nothing."""
        try:
            read_unsubscribe_token(settings, token)
        except InvalidLinkToken as exc:
            return _refusal(exc)
        form = (
            f'<form method="post" action="/unsubscribe/{escape(quote(token, safe=""))}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<p>Do you want to stop receiving these e-mails?</p><button type="submit">Unsubscribe</button></form>'
        )
        return page("Unsubscribe", form)

    @app.post(
        "/unsubscribe/{token}",
        summary="Unsubscribe (RFC 8058 one-click)",
        tags=["links"],
        response_class=HTMLResponse,
        responses={**answers, **BODY_ANSWERS},
    )
    async def unsubscribe_now(token: str) -> HTMLResponse:
        """Suppresses the customer for e-mail and records an `unsubscribe` event; repeating it changes nothing.

        Mail clients send `List-Unsubscribe=One-Click` (form-encoded) as the body;
        the token in the URL is the authorisation.
        """
        try:
            await run_in_threadpool(unsubscribe, engine, settings, token)
        except InvalidUnsubscribeToken as exc:
            return _refusal(exc)
        return page("You are unsubscribed", "<p>You will not receive these e-mails any more.</p>")
