"""Tracked click links in e-mails: ``{base}/c/{tracking token}?u=<url>&s=<signature of url>``.

The response API redirects only to a URL whose signature it can verify with the link secret
(salt ``click``), so a link can't be turned into an open redirect. Templates write
``{{ click("https://www.acme.example/offer") }}``; the message builder binds ``click`` to the
message's tracking token.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from itsdangerous import Signer

CLICK_SALT = "click"


def click_signer(secret: str) -> Signer:
    return Signer(secret, salt=CLICK_SALT)


def is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def click_link(signer: Signer, base_url: str, tracking_token: str, url: str) -> str:
    """The tracked link; raises ``ValueError`` unless ``url`` is an absolute http(s) URL."""
    if not isinstance(url, str) or not is_http_url(url):
        raise ValueError(
            f"click() needs an absolute http(s) URL, e.g. click('https://www.acme.example/offer'); got {url!r}"
        )
    signature = signer.get_signature(url).decode()
    return f"{base_url.rstrip('/')}/c/{quote(tracking_token, safe='')}?u={quote(url, safe='')}&s={signature}"
