"""The HTML pages the link endpoints answer recipients with, and their entries in ``/openapi.json``.

``page(title, body, status)`` is a small self-contained page (``noindex``, ``Cache-Control: no-store``;
the title is escaped, ``body`` is trusted HTML); ``page_answer(description)`` documents such an answer;
``PREVIEW_PAGE`` is the text for a link of a preview or dry run.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi.responses import HTMLResponse

__all__ = ["PREVIEW_PAGE", "page", "page_answer"]

_PAGE = {"content": {"text/html": {"schema": {"type": "string"}}}}


def page_answer(description: str) -> dict[str, Any]:
    """An OpenAPI response entry answered with an HTML page."""
    return {"description": description, **_PAGE}


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">'
        f'<title>{escape(title)}</title></head><body style="font-family:sans-serif;max-width:36em;margin:3em auto">'
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


PREVIEW_PAGE = (
    "<p>This link comes from a <b>preview</b> or dry run of a campaign. It belongs to no e-mail that was "
    "sent, so it changes nothing and records nothing.</p>"
)
