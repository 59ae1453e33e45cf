"""Templates: loading, static checks with file:line, sandboxed rendering, render errors.

Every test writes real template files under ``tmp_path``; the shipped win-back e-mail is
rendered from ``templates/``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from orchestrator.errors import Problem, ValidationFailed
from orchestrator.rules.kinds import KINDS, channel_kind
from orchestrator.templates.loader import ENGINE_VARIABLES, RenderError, TemplateSet, check_template, money

REPO = Path(__file__).resolve().parents[2]
CUSTOMER_COLUMNS = [
    "customer_id", "first_name", "last_name", "email", "phone", "age", "region", "segment",
    "revenue_12m", "recency_days", "consent_email", "consent_phone", "territory",
]  # fmt: skip


def customer(**overrides) -> dict:
    row = {
        "customer_id": "C0000042",
        "first_name": "Anna",
        "last_name": "Müller",
        "email": "anna.mueller42@example.com",
        "phone": "+49 30 5551234",
        "age": 41,
        "region": "North",
        "segment": "gold",
        "revenue_12m": 2450.5,
        "recency_days": 210,
        "consent_email": True,
        "consent_phone": False,
        "territory": "T01",
        "campaign": "winback-email",
        "wave": "2026-11-23",
        "unsubscribe_url": "https://links.acme.example/unsubscribe/abc123",
        "click": lambda url: url,  # the message builder binds it to a signed, tracked link
    }
    row.update(overrides)
    return row


def write(root: Path, name: str, files: dict[str, str], channel: str = "email") -> Path:
    """Write ``files`` (relative paths, e.g. ``subject.txt`` or ``../_footer.html``) into the template folder."""
    folder = root / channel / name
    folder.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        path = folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def simple(root: Path, name: str = "hello", **parts: str) -> TemplateSet:
    files = {
        "subject.txt": "Hello {{ first_name }}\n",
        "body.html": "<p>Hi {{ first_name }}</p>\n",
        "body.txt": "Hi {{ first_name }}\n",
    }
    files.update({k.replace("_", "."): v for k, v in parts.items()})
    write(root, name, files)
    return TemplateSet.load(root, "email", name, channel_kind("email").layout)


def messages(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


# --- the shipped example --------------------------------------------------------------------


def test_shipped_winback_is_clean_against_the_customer_columns():
    template = TemplateSet.load(REPO / "templates", "email", "winback", channel_kind("email").layout)
    assert template.parts == ("subject", "html", "text")
    assert set(template.files) == {"subject", "html", "text"}
    assert template.check(CUSTOMER_COLUMNS) == []
    assert {"first_name", "segment", "unsubscribe_url"} <= template.variables().keys()


def test_shipped_winback_renders_a_personal_segment_offer_with_unsubscribe_link():
    template = TemplateSet.load(REPO / "templates", "email", "winback", channel_kind("email").layout)
    gold = template.render(customer())
    assert gold["subject"] == "Anna, we miss you: €100 to welcome you back"
    assert "Dear Anna," in gold["html"] and "Dear Anna," in gold["text"]
    assert "personal adviser" in gold["html"] and "personal" in gold["text"]
    assert 'href="https://links.acme.example/unsubscribe/abc123"' in gold["html"]
    assert "https://links.acme.example/unsubscribe/abc123" in gold["text"]
    assert "utm_campaign=winback-email&amp;utm_content=2026-11-23" in gold["html"]
    assert "more than 7 months" in gold["text"]

    bronze = template.render(customer(segment="bronze", first_name=None, recency_days=95))
    assert bronze["subject"] == "We miss you: €25 to welcome you back"
    assert "Dear customer," in bronze["text"] and "None" not in bronze["text"]
    assert "months" not in bronze["text"].split("WELCOME-BACK")[0]
    assert "€25 welcome-back bonus" in bronze["html"]


# --- rendering --------------------------------------------------------------------------------


def test_html_part_escapes_customer_values_and_text_part_does_not(tmp_path):
    template = simple(tmp_path)
    parts = template.render(customer(first_name="<script>alert(1)</script> & Co"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in parts["html"]
    assert "<script>" not in parts["html"]
    assert parts["text"] == "Hi <script>alert(1)</script> & Co\n"
    assert parts["subject"] == "Hello <script>alert(1)</script> & Co"


def test_subject_is_one_line_even_with_line_breaks_in_data_or_template(tmp_path):
    template = simple(tmp_path, subject_txt="\n  {{ first_name }},\n  welcome\tback!  \n\n")
    parts = template.render(customer(first_name="Anna\r\nBcc: everyone@example.com\u2028X"))
    assert parts["subject"] == "Anna Bcc: everyone@example.com X, welcome back!"
    assert "\n" not in parts["subject"] and "\r" not in parts["subject"]


def test_empty_subject_after_rendering_is_an_error(tmp_path):
    template = simple(tmp_path, subject_txt="{{ first_name }}\n")
    with pytest.raises(RenderError, match="subject is empty after rendering"):
        template.render(customer(first_name=None))


def test_none_prints_as_empty_and_trailing_newline_is_kept(tmp_path):
    template = simple(tmp_path, body_txt="Phone: {{ phone }}.\n")
    assert template.render(customer(phone=None))["text"] == "Phone: .\n"


def test_missing_value_is_a_render_error_with_file_and_line(tmp_path):
    template = simple(tmp_path, body_txt="Hi,\n\nyour region: {{ region }}\n")
    context = customer()
    del context["region"]
    with pytest.raises(RenderError) as info:
        template.render(context)
    error = info.value
    assert error.problem == Problem(str(tmp_path / "email/hello/body.txt"), 3, None, "undefined variable 'region'")
    assert error.part == "text"
    assert error.variable == "region"
    assert str(error) == f"{tmp_path / 'email/hello/body.txt'}:3: undefined variable 'region'"


def test_render_error_in_included_partial_names_the_partial(tmp_path):
    write(tmp_path, "hello", {"subject.txt": "Hi\n", "body.html": "<p>Hi</p>\n{% include 'email/_footer.html' %}\n"})
    (tmp_path / "email/_footer.html").write_text("<p>\n{{ unsubscribe_url }}\n{{ territory }}</p>\n")
    template = TemplateSet.load(tmp_path, "email", "hello", channel_kind("email").layout)
    context = customer()
    del context["territory"]
    with pytest.raises(RenderError) as info:
        template.render(context)
    assert (info.value.problem.file, info.value.problem.line) == (str(tmp_path / "email/_footer.html"), 3)


def test_render_errors_never_show_customer_values(tmp_path):
    template = simple(
        tmp_path,
        body_txt=(
            "{% set offers = {'gold': 'A', 'silver': 'B'} %}\n"
            "{{ offers[email] }}\n"
            "{{ '{:d}'.format(last_name) }}\n"
            "{{ phone|money }}\n"
        ),
    )
    secret = "anna.secret@example.com"
    (key_error,) = template.render_many([customer(email=secret)])
    assert isinstance(key_error, RenderError) and key_error.problem.line == 2
    assert "key not shown" in str(key_error) and secret not in str(key_error)

    template = simple(tmp_path, "format", body_txt="{{ '{:d}'.format(last_name) }}\n")
    (value_error,) = template.render_many([customer(last_name="Geheimname")])
    assert "ValueError" in str(value_error) and "Geheimname" not in str(value_error)

    template = simple(tmp_path, "money", body_txt="{{ phone|money }}\n")
    (filter_error,) = template.render_many([customer(phone="+49 30 5551234")])
    assert str(filter_error).endswith(
        "body.txt:1: money: expected a number, got str (use |default(0, true) or an {% if %} for empty values)"
    )


def test_render_many_returns_errors_in_place_and_keeps_going(tmp_path):
    template = simple(tmp_path, body_txt="Spent {{ revenue_12m|money }}\n")
    results = template.render_many([customer(revenue_12m=1234.5), customer(revenue_12m=None), customer(revenue_12m=7)])
    assert [type(r).__name__ for r in results] == ["dict", "RenderError", "dict"]
    assert results[0]["text"] == "Spent 1,234.50\n"
    assert results[1].problem.line == 1 and "money: expected a number, got None" in results[1].problem.message
    assert results[1].__traceback__ is None
    assert results[2]["text"] == "Spent 7.00\n"


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        (1234.5, {}, "1,234.50"),
        (1234567, {}, "1,234,567.00"),
        (1234.5, {"places": 0}, "1,234"),
        (-0.5, {}, "-0.50"),
        (1234.5, {"thousands": ".", "decimal": ","}, "1.234,50"),
    ],
)
def test_money_filter(value, args, expected):
    assert money(value, **args) == expected


def test_templates_are_compiled_once(tmp_path):
    template = simple(tmp_path)
    (tmp_path / "email/hello/body.txt").write_text("changed {{ first_name }}\n")
    assert template.render(customer())["text"] == "Hi Anna\n"


# --- the sandbox --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ range.__globals__ }}",
        "{{ first_name|attr('__class__') }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_access_to_python_internals_is_refused_when_loading(tmp_path, attack):
    write(tmp_path, "evil", {"subject.txt": "Hi\n", "body.txt": f"Hello\n{attack}\n"})
    with pytest.raises(ValidationFailed) as info:
        TemplateSet.load(tmp_path, "email", "evil", channel_kind("email").layout)
    problem = info.value.errors[0]
    assert (problem.file, problem.line) == (str(tmp_path / "email/evil/body.txt"), 2)
    assert "is not allowed in templates" in problem.message


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("{{ first_name|attr('_' ~ '_class__') }}", "blocked by the sandbox"),
        ("{% set names = [] %}{{ names.append(first_name) }}", "blocked by the sandbox"),
        ("{{ ({}).update(x=1) }}", "blocked by the sandbox"),
    ],
)
def test_sandbox_blocks_computed_escapes_at_render_time(tmp_path, attack, reason):
    template = simple(tmp_path, body_txt=f"Hello\n{attack}\n")
    with pytest.raises(RenderError, match=reason) as info:
        template.render(customer())
    assert info.value.problem.line == 2


# --- static checks ------------------------------------------------------------------------------


def test_check_finds_undefined_variables_with_lines_and_suggestions(tmp_path):
    folder = write(
        tmp_path,
        "offer",
        {
            "subject.txt": "{{ frist_name }}, an offer for you\n",
            "body.html": (
                "{% extends 'email/_layout.html' %}\n"
                "{% block content %}\n"
                "{% set greeting = 'Dear' %}\n"
                "<p>{{ greeting }} {{ first_name }},</p>\n"
                "{% if segment == 'gold' %}\n"
                "  <p>You spent {{ revenu_12m|money }}.</p>\n"
                "{% endif %}\n"
                "{% for product in products %}{{ loop.index }}. {{ product }}"
                "{% include 'email/_product.html' %}{% endfor %}\n"
                "{% endblock %}\n"
            ),
            "body.txt": (
                "{% if segment == 'gold' %}{% set bonus = 100 %}{% else %}{% set bonus = 25 %}{% endif %}\n"
                "{% macro line(label, value) %}{{ label }}: {{ value }}{% endmacro %}\n"
                "{{ line('Bonus', bonus) }} {{ nickname|default(first_name) }}\n"
                "{% if coupon is defined %}{{ coupon }}{% endif %}\n"
                "{% with total = revenue_12m * 2 %}{{ total }}{% endwith %}\n"
                "{{ unsubscribe_url }} {{ campaign }} {{ wave }} {{ customer_id }} {{ range(3)|list }}\n"
                "{{ tracking_token }} {{ open_pixel_url }} {{ click('https://acme.example/') }}\n"
            ),
        },
    )
    (tmp_path / "email/_layout.html").write_text(
        "<html>\n<body>\n{% block content %}{% endblock %}\n{{ terrritory }}\n{{ unsubscribe_url }}</body>\n</html>\n"
    )
    (tmp_path / "email/_product.html").write_text("({{ product }}, {{ regoin }})\n")
    template = TemplateSet.load(tmp_path, "email", "offer", channel_kind("email").layout)

    assert messages(template.check(CUSTOMER_COLUMNS + ["products"])) == [
        f"{folder / 'subject.txt'}:1: undefined variable 'frist_name', did you mean 'first_name'?",
        f"{folder / 'body.html'}:6: undefined variable 'revenu_12m', did you mean 'revenue_12m'?",
        f"{tmp_path / 'email/_layout.html'}:4: undefined variable 'terrritory', did you mean 'territory'?",
        f"{tmp_path / 'email/_product.html'}:1: undefined variable 'regoin', did you mean 'region'?",
    ]
    variables = template.variables()
    assert variables["segment"] == [(str(folder / "body.html"), 5), (str(folder / "body.txt"), 1)]
    assert variables["unsubscribe_url"] == [(str(tmp_path / "email/_layout.html"), 5), (str(folder / "body.txt"), 6)]
    for defined in ("greeting", "product", "loop", "bonus", "label", "value", "nickname", "coupon", "total", "range"):
        assert defined not in variables
    assert ENGINE_VARIABLES <= variables.keys()
    assert {p.message.split("'")[1] for p in template.check([])}.isdisjoint(ENGINE_VARIABLES)


def test_same_variable_on_several_lines_is_reported_at_each(tmp_path):
    template = simple(tmp_path, body_txt="{{ x }}\n\n{{ x }}{{ x }}\n")
    assert [(p.file.rsplit("/", 1)[1], p.line) for p in template.check(CUSTOMER_COLUMNS)] == [
        ("body.txt", 1),
        ("body.txt", 3),
    ]


def test_syntax_errors_are_reported_as_file_and_line(tmp_path):
    write(
        tmp_path,
        "broken",
        {
            "subject.txt": "Hello {{ first_name }\n",
            "body.html": "<p>\n\n{% if segment = 'gold' %}Gold{% endif %}\n",
            "body.txt": "{% include 'email/_broken.txt' %}\n",
        },
    )
    (tmp_path / "email/_broken.txt").write_text("ok\n{% for x in %}\n")
    with pytest.raises(ValidationFailed) as info:
        TemplateSet.load(tmp_path, "email", "broken", channel_kind("email").layout)
    where = sorted((p.file, p.line) for p in info.value.errors)
    assert where == sorted(
        [
            (str(tmp_path / "email/broken/subject.txt"), 1),
            (str(tmp_path / "email/broken/body.html"), 3),
            (str(tmp_path / "email/_broken.txt"), 2),
        ]
    )
    assert all(p.message.startswith("syntax error: ") for p in info.value.errors)
    assert (
        check_template(tmp_path, "email", "broken", channel_kind("email").layout, CUSTOMER_COLUMNS)
        == info.value.problems
    )


def test_unknown_filter_and_missing_partial_are_errors_with_suggestions(tmp_path):
    (tmp_path / "email").mkdir()
    (tmp_path / "email/_footer.html").write_text("footer\n")
    write(
        tmp_path,
        "typos",
        {
            "subject.txt": "Hi\n",
            "body.html": (
                "{% if segment == 'gold' %}\n{{ revenue_12m|mony }}\n{% endif %}\n{% include 'email/_fotter.html' %}\n"
            ),
            "body.txt": "{{ first_name|tittle }}\n",
        },
    )
    problems = check_template(tmp_path, "email", "typos", channel_kind("email").layout, CUSTOMER_COLUMNS)
    assert sorted((Path(p.file).name, p.line, p.message) for p in problems) == [
        ("body.html", 2, "unknown filter 'mony', did you mean 'money'?"),
        ("body.html", 4, "template 'email/_fotter.html' not found, did you mean 'email/_footer.html'?"),
        ("body.txt", 1, "unknown filter 'tittle', did you mean 'title'?"),
    ]


def test_missing_template_folder_suggests_the_closest_name(tmp_path, monkeypatch):
    write(tmp_path / "templates", "winback", {"subject.txt": "Hi\n", "body.txt": "Hi\n"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationFailed) as info:
        TemplateSet.load(Path("templates"), "email", "winbak", channel_kind("email").layout)
    assert messages(info.value.problems) == [
        "templates/email/winbak: template 'winbak' not found in templates/email, did you mean 'winback'?"
    ]
    absolute = check_template(
        tmp_path / "templates", "email", "winbak", channel_kind("email").layout, []
    )  # below the current folder: shown relative
    assert messages(absolute) == messages(info.value.problems)


def test_missing_channel_folder(tmp_path):
    (problem,) = check_template(tmp_path, "email", "winback", channel_kind("email").layout, [])
    assert problem.message == f"template 'winback' not found: folder {tmp_path / 'email'} does not exist"


def test_template_name_must_be_a_plain_folder_name(tmp_path):
    (tmp_path / "email").mkdir()
    (problem,) = check_template(tmp_path, "email", "../../etc", channel_kind("email").layout, [])
    assert "must be a folder name" in problem.message


def test_missing_required_parts(tmp_path):
    write(tmp_path, "nosubject", {"body.txt": "Hi\n", "body.html": "<p>Hi</p>\n"})
    write(tmp_path, "nobody", {"subject.txt": "Hi\n"})
    (nosubject,) = check_template(tmp_path, "email", "nosubject", channel_kind("email").layout, [])
    assert nosubject == Problem(
        str(tmp_path / "email/nosubject"),
        None,
        None,
        "missing subject.txt: every email template needs the subject line",
    )
    (nobody,) = check_template(tmp_path, "email", "nobody", channel_kind("email").layout, [])
    assert nobody.message == (
        "missing body.html (the HTML body) or body.txt (the plain-text body): every email template needs at least one"
    )


def test_one_body_only_is_a_warning_and_stray_files_are_pointed_out(tmp_path):
    write(
        tmp_path,
        "htmlonly",
        {"subject.txt": "Hi\n", "body.html": "<p>Hi</p>\n", "subjet.txt": "x\n", "_partial.html": "p\n"},
    )
    template = TemplateSet.load(tmp_path, "email", "htmlonly", channel_kind("email").layout)
    assert template.parts == ("subject", "html")
    assert template.render(customer()) == {"subject": "Hi", "html": "<p>Hi</p>\n"}
    problems = template.check(CUSTOMER_COLUMNS)
    assert all(p.severity == "warning" for p in problems)
    assert messages(problems) == [
        f"{tmp_path / 'email/htmlonly'}: warning: no body.txt: email templates should have body.html and body.txt"
        " so that every client can show the message",
        f"{tmp_path / 'email/htmlonly/subjet.txt'}: warning: unexpected file 'subjet.txt' is not used,"
        " did you mean 'subject.txt'? (parts: subject.txt, body.html, body.txt; partials start with '_')",
    ]


def test_unknown_channel_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'email'"):
        TemplateSet.load(tmp_path, "emial", "winback", channel_kind("emial").layout)
    assert "email" in KINDS


def test_render_error_survives_pickling(tmp_path):
    template = simple(tmp_path, body_txt="{{ nope }}\n")
    (error,) = template.render_many([customer()])
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.problem, copy.part, copy.variable, str(copy)) == (error.problem, "text", "nope", str(error))
