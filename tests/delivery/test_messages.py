"""MessageBuilder: stable Message-IDs, signed unsubscribe links and tracking tokens."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest
from itsdangerous import BadData, URLSafeSerializer

from orchestrator.delivery.messages import TRACKING_HEADER, InvalidTrackingToken, MessageBuilder, read_tracking_token
from orchestrator.ledger.contacts import ContactChunk
from orchestrator.rules.kinds import channel_kind
from orchestrator.rules.spec import CampaignSpec
from orchestrator.settings import LinkSettings, PathSettings, Settings
from orchestrator.templates.links import ExpiredLinkToken, LinkTokens, PreviewLinkToken, today_number
from orchestrator.templates.loader import TemplateSet

SECRET = "a-test-secret-of-32-characters!!"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        paths=PathSettings(data_dir=tmp_path / "var", templates_dir=tmp_path / "templates"),
        links=LinkSettings(base_url="https://links.bank.example/", secret_key=SECRET),
    )


def builder(settings: Settings, wave_id: int | None = 12) -> MessageBuilder:
    folder = settings.paths.templates_dir / "email" / "offer"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subject.txt").write_text("Hello {{ first_name }}\n")
    (folder / "body.txt").write_text("Hi {{ first_name }}\n{{ unsubscribe_url }}\n")
    (folder / "body.html").write_text(
        '<p>Hi {{ first_name }}</p><img src="{{ open_pixel_url }}" alt=""> {{ tracking_token }}\n'
    )
    spec = CampaignSpec.model_validate(
        {
            "name": "winback",
            "audience": {"all": [{"segment": {"in": ["gold"]}}]},
            "control": {"share": 0.1},
            "channels": {"email": {"template": "offer", "sender": "Bank <news@bank.example>"}},
            "source": Path("rules/winback.yaml"),
            "sha256": "0" * 64,
        }
    )
    templates: dict[str | None, TemplateSet] = {
        None: TemplateSet.load(settings.paths.templates_dir, "email", "offer", channel_kind("email").layout)
    }
    return MessageBuilder(settings, spec, templates, "2026-01-05", wave_id)


def rows(n: int, start: int = 1) -> list[tuple[dict, int]]:
    """``(customer row, contact id)`` pairs."""
    return [
        ({"customer_id": f"c{i}", "first_name": f"Ann{i}", "email": f"ann{i}@example.com"}, 100 + i)
        for i in range(start, start + n)
    ]


def chunk(contacts: list[tuple[dict, int]]) -> ContactChunk:
    n = len(contacts)
    return ContactChunk([c for c, _ in contacts], [cid for _, cid in contacts], [None] * n, [None] * n)


def test_every_message_carries_its_own_verifiable_token(settings):
    messages, skipped = builder(settings).build(chunk(rows(5)))
    assert skipped == []
    tokens = [m.headers[TRACKING_HEADER] for m in messages]
    assert len(set(tokens)) == 5
    for message, token in zip(messages, tokens, strict=True):
        assert read_tracking_token(settings, token) == (12, message.contact_id)
        assert f'<img src="https://links.bank.example/o/{token}.gif" alt="">' in message.parts["html"]
        assert message.parts["html"].rstrip().endswith(token)


def test_token_and_message_id_are_stable_per_contact(settings):
    first, _ = builder(settings).build(chunk(rows(3)))
    again, _ = builder(settings).build(chunk(rows(3)[::-1]))  # a re-run, another order
    by_contact = {m.contact_id: m for m in again}
    for message in first:
        assert by_contact[message.contact_id].key == message.key
        assert by_contact[message.contact_id].headers[TRACKING_HEADER] == message.headers[TRACKING_HEADER]
    other_wave, _ = builder(settings, wave_id=13).build(chunk(rows(3)))
    assert {m.headers[TRACKING_HEADER] for m in other_wave}.isdisjoint(m.headers[TRACKING_HEADER] for m in first)


def test_tampered_tokens_are_rejected(settings):
    [message], _ = builder(settings).build(chunk(rows(1)))
    token = message.headers[TRACKING_HEADER]
    forged = LinkTokens("another-secret-key-0123456789").make("tracking", 12, 999)
    for bad in (
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # altered
        token[:10] + token[11:] + token[10],  # shuffled
        token[:-4],  # cut
        forged,  # another key
        "",
        "not-a-token",
        "%%%",
    ):
        with pytest.raises(InvalidTrackingToken, match="The tracking token is not valid: it was altered or cut"):
            read_tracking_token(settings, bad)


def test_other_tokens_are_not_tracking_tokens(settings):
    [message], _ = builder(settings).build(chunk(rows(1)))
    unsubscribe_token = message.headers["List-Unsubscribe"].rpartition("/")[2].rstrip(">")
    with pytest.raises(InvalidTrackingToken):
        read_tracking_token(settings, unsubscribe_token)  # same key, other purpose
    assert LinkTokens(SECRET).read("unsubscribe", unsubscribe_token) == (12, 101)


def test_token_is_opaque_and_expires(settings):
    """Problem 4 of issue 15: tokens were readable base64 of ids (the unsubscribe token of the customer id)
    and never expired. Now they show nothing and expire after links.tracking_days / unsubscribe_days."""
    [message], _ = builder(settings).build(chunk(rows(1)))
    token = message.headers[TRACKING_HEADER]
    unsubscribe_token = message.headers["List-Unsubscribe"].rpartition("/")[2].rstrip(">")
    for shown in (token, unsubscribe_token):
        raw = base64.urlsafe_b64decode(shown + "=" * (-len(shown) % 4))
        assert struct.pack(">QQ", 12, 101) not in raw and b"c1" not in raw and b"ann1" not in raw.lower()
        with pytest.raises(BadData):
            URLSafeSerializer(SECRET, salt="tracking").loads(shown)  # no longer the readable format
    old = LinkTokens(SECRET).make("tracking", 12, 101, issued=today_number() - settings.links.tracking_days - 1)
    with pytest.raises(ExpiredLinkToken):
        read_tracking_token(settings, old)


def test_previews_make_tokens_the_api_refuses(settings):
    """A builder without a wave (preview, dry run, the sample before a wave) signs with the preview key."""
    [message], _ = builder(settings, wave_id=None).build(chunk(rows(1)))
    unsubscribe_token = message.headers["List-Unsubscribe"].rpartition("/")[2].rstrip(">")
    with pytest.raises(PreviewLinkToken):
        read_tracking_token(settings, message.headers[TRACKING_HEADER])
    with pytest.raises(PreviewLinkToken):
        LinkTokens(SECRET).read("unsubscribe", unsubscribe_token)


def test_templates_see_the_customer_columns_and_the_engine_variables(settings):
    customer, contact_id = rows(1)[0]
    context = builder(settings).context(customer, contact_id)
    engine = {"campaign", "wave", "unsubscribe_url", "tracking_token", "open_pixel_url", "click"}
    assert set(context) == set(customer) | engine
    assert {k: context[k] for k in customer} == customer


def test_a_chunk_needs_one_contact_field_per_customer_row():
    customers = [customer for customer, _ in rows(2)]
    with pytest.raises(ValueError, match=r"one value per customer row \(2\)\. Got contact_ids: 1"):
        ContactChunk(customers, [1], [None, None], [None, None])


ADDRESSES = [
    "customer1@example.com",
    "First.Last+tag@Example.COM",
    "o'brien@bank.example.org",
    "x@sub.domain.co.uk",
    "a@b.c",
    "a@b.co",
    ".lead@example.com",
    "trail.@example.com",
    "two..dots@example.com",
    "no-at.example.com",
    "a@b@example.com",
    "spaces in@example.com",
    "x@localhost",
    "x@host.local",
    "x@host.test",
    "x@host.invalid",
    "x@example.123",
    "x@-bad.example.com",
    "x@bad-.example.com",
    "x@xn--mnchen-3ya.de",
    "x@xn--invalid.de",
    "jürgen@example.com",
    "x@münchen.de",
    "x@" + "a" * 64 + ".com",
    "x@" + "a" * 63 + ".com",
    "l" * 65 + "@example.com",
    "l" * 64 + "@example.com",
    "x@" + ".".join(["abcdefghi"] * 30) + ".com",
    '"quoted"@example.com',
    "x@[127.0.0.1]",
    "x@example.c0m",
    "x@EXAMPLE.COM",
    "",
    "@example.com",
    "x@",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_normalized_address_agrees_with_email_validator(address):
    from email_validator import EmailNotValidError, validate_email

    from orchestrator.delivery.messages import normalized_address

    try:
        expected = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    assert normalized_address(address) == expected


def test_click_links_are_the_signed_links_of_click_link_whatever_the_order_of_urls():
    """``ClickLinks`` keeps each URL's signed target: every link equals ``click_link``'s, for any token and URL."""
    from urllib.parse import quote

    from orchestrator.templates.links import ClickLinks, click_link, click_signer

    signer = click_signer(SECRET)
    links = ClickLinks(signer, "https://links.bank.example/")
    urls = [
        "https://www.acme.example/offer?a=1&b=two",
        "http://acme.example/",
        "https://www.acme.example/offer?a=1&b=two",
    ]
    for k, url in enumerate(urls * 2):
        token = f"tok-{k}_/+="
        assert links(quote(token, safe=""), url) == click_link(signer, "https://links.bank.example/", token, url)
    assert len(links._targets) == 2


def test_click_links_refuse_what_is_not_an_http_url_every_time_and_keep_at_most_max_urls():
    from orchestrator.templates.links import ClickLinks, click_signer

    links = ClickLinks(click_signer(SECRET), "https://links.bank.example")
    for _ in range(2):  # never remembered as valid
        with pytest.raises(ValueError, match="absolute http"):
            links("t", "javascript:alert(1)")
        with pytest.raises(ValueError, match="absolute http"):
            links("t", ["https://acme.example/"])
    for k in range(ClickLinks.MAX_URLS + 5):
        assert links("t", f"https://acme.example/{k}").startswith("https://links.bank.example/c/t?u=https%3A%2F%2F")
    assert len(links._targets) == ClickLinks.MAX_URLS


def test_a_rendered_click_is_signed_for_its_url_and_carries_the_messages_tracking_token(settings):
    from urllib.parse import parse_qs, urlsplit

    from orchestrator.templates.links import click_signer

    built = builder(settings)
    contexts = [built.context({"first_name": "Ann"}, contact_id) for contact_id in (1, 2)]
    for context in contexts:
        for url in ("https://acme.example/a", "https://acme.example/b?x=1", "https://acme.example/a"):
            link = urlsplit(context["click"](url))
            assert link.path == f"/c/{context['tracking_token']}"
            query = parse_qs(link.query)
            assert query["u"] == [url]
            assert click_signer(settings.link_secret()).verify_signature(url, query["s"][0])
    assert contexts[0]["click"]("https://acme.example/a") != contexts[1]["click"]("https://acme.example/a")
