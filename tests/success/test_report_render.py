"""The success report rendered: HTML page with charts, terminal tables, Prefect Markdown and rows.

Reports are built by hand: with a control group, without one, without scores, and with tiny
groups that carry flags.
"""

from __future__ import annotations

import html
import json
import math
import re

import pytest
from rich.console import Console

from orchestrator.success.artifacts import markdown_report, table_rows
from orchestrator.success.formatting import headline
from orchestrator.success.html_page import render_html, write_html
from orchestrator.success.report_types import CurvePoint, GainsPoint, Segment, SuccessReport
from orchestrator.success.statistics import Estimate
from orchestrator.success.terminal import print_report

NONE = Estimate(None, None, None)


def segment(dimension, key, treated, control, ts, cs, *, p=None, significant=None, flags=(), revenue=50.0, cost=0.5):
    """A segment with rates, lift and revenue worked out roughly like success.py would."""
    tr = ts / treated if treated else None
    if not control:
        return Segment(
            dimension,
            key,
            treated,
            0,
            ts,
            0,
            tr,
            None,
            NONE,
            NONE,
            None,
            None,
            NONE,
            Estimate(revenue * tr, None, None),
            NONE,
            NONE,
            NONE,
            cost * treated,
            NONE,
            False,
            ["no control group", *flags],
        )
    cr = cs / control
    lift = tr - cr
    se = math.sqrt(tr * (1 - tr) / treated + cr * (1 - cr) / control) or 0.01
    low, high = lift - 1.96 * se, lift + 1.96 * se
    if p is None:
        p = math.erfc(abs(lift) / se / math.sqrt(2))
    significant = p < 0.05 if significant is None else significant
    incr = lift * treated
    flags = list(flags) + ([] if significant else ["not significant"])
    return Segment(
        dimension,
        key,
        treated,
        control,
        ts,
        cs,
        tr,
        cr,
        Estimate(lift, low, high),
        Estimate(lift / cr if cr else None, low / cr if cr else None, high / cr if cr else None),
        p,
        "z" if min(ts, cs) >= 5 else "fisher",
        Estimate(incr, low * treated, high * treated),
        Estimate(revenue * tr, None, None),
        Estimate(revenue * cr, None, None),
        Estimate(revenue * lift, revenue * low, revenue * high),
        Estimate(revenue * incr, revenue * low * treated, revenue * high * treated),
        cost * treated,
        Estimate((revenue * incr - cost * treated) / (cost * treated), None, None),
        significant,
        flags,
    )


def curve(control=True):
    return [CurvePoint(d, 0.004 * d, 0.003 * d if control else None) for d in range(0, 31)]


def gains(control=True):
    out, cum = [], 0.0
    for d in range(1, 11):
        cum += (11 - d) / 55
        out.append(
            GainsPoint(
                d,
                900,
                0.2 - 0.015 * d,
                (0.15 - 0.012 * d) if control else None,
                (0.05 - 0.003 * d) if control else None,
                cum if control else None,
            )
        )
    return out


@pytest.fixture
def with_control():
    return SuccessReport(
        campaign="winback-email",
        goal="purchase",
        window_days=30,
        waves=["2026-11-24", "2026-12-01"],
        segments=[
            segment("overall", "all", 9000, 1000, 1260, 100, p=0.0004),
            segment("wave", "2026-11-24", 4500, 500, 640, 50),
            segment("wave", "2026-12-01", 4500, 500, 620, 50),
            segment("channel", "email", 6000, 700, 780, 70),
            segment("channel", "call", 3000, 300, 480, 30),
            segment("variant", "a", 4500, 500, 600, 52),
            segment("variant", "b", 4500, 500, 660, 48),
            *(segment("score_decile", str(d), 900, 100, 190 - 13 * d, 15 - d) for d in range(1, 11)),
        ],
        curve=curve(),
        gains=gains(),
        notes=["Wave 2026-12-01 is still inside its 30-day window."],
    )


def test_headline_in_plain_words(with_control):
    text = headline(with_control)
    assert text.startswith("+4.0 points (95% CI ")
    assert "p < 0.001" in text and text.endswith("the campaign worked.")


def test_html_page_with_four_charts(with_control, tmp_path):
    path = write_html(with_control, tmp_path / "out" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 4 and 'class="nochart"' not in page
    assert page.count('role="img"') == 4
    assert "Lift per channel and A/B variant" in page and "Gains by score decile" in page
    assert "Lift and incremental value per wave" in page
    # headline numbers and notes
    assert html.escape(headline(with_control)) in page
    assert "the campaign worked" in page
    assert "Wave 2026-12-01 is still inside its 30-day window." in page
    # every segment in both tables: results with cost and ROI, then the details
    assert page.count("<tr class=") - page.count('<tr class="group">') == 2 * len(with_control.segments)
    for key in ("2026-11-24", "email", "call"):
        assert f">{key}<" in page
    # offline: nothing loaded from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page


def test_html_escapes_every_text(with_control, tmp_path):
    with_control.campaign = "<script>alert(1)</script>"
    with_control.segments[3].key = '<img src=x onerror="alert(2)">'
    with_control.segments[5].key = "$5 off & more"
    with_control.notes.append("<b>bold</b>")
    page = write_html(with_control, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x" in page
    assert "$5 off &amp; more" in page  # in the table and as chart label, not mathtext
    assert page.count("<svg") == 4


def test_no_control_group(tmp_path):
    report = SuccessReport(
        campaign="all-in",
        goal="purchase",
        window_days=14,
        waves=["2026-11-24"],
        segments=[segment("overall", "all", 5000, 0, 400, 0), segment("channel", "email", 5000, 0, 400, 0)],
        curve=curve(control=False),
        gains=gains(control=False),
        notes=[],
    )
    assert headline(report) == "Lift cannot be measured: the campaign has no control group."
    page = render_html(report)
    assert "Lift cannot be measured" in page
    assert "No lift chart: the campaign has no control group" in page
    assert page.count("<svg") == 2  # response curve and gains, treated only
    assert "Only the treated rate is shown" in page
    md = markdown_report(report)
    assert "Lift cannot be measured" in md and "no control group" in md
    console = Console(record=True, width=200)
    print_report(report, console)
    out = console.export_text()
    assert "Lift cannot be measured" in out and "no control group" in out


def test_no_scores_and_no_curve(with_control):
    with_control.segments = [s for s in with_control.segments if s.dimension != "score_decile"]
    with_control.gains = []
    with_control.curve = []
    page = render_html(with_control)
    assert page.count("<svg") == 2  # the lift per wave and the lift chart
    assert "No gains chart: the customers have no scores" in page
    assert "No response curve" in page


def test_tiny_groups_with_flags(tmp_path):
    report = SuccessReport(
        campaign="pilot",
        goal="call back",
        window_days=None,
        waves=["w1"],
        segments=[
            segment("overall", "all", 40, 4, 6, 0, p=0.62, flags=["control group too small"]),
            segment("variant", "a", 20, 2, 4, 0, p=0.55, flags=["control group too small"]),
            segment("variant", "b", 20, 2, 2, 0, p=1.0, flags=["control group too small"]),
        ],
        curve=[],
        gains=[],
        notes=["Only 4 customers in the control group; lift is very uncertain."],
    )
    text = headline(report)
    assert "p = 0.62" in text and "not significant" in text and "too small to tell" in text
    page = write_html(report, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "control group too small" in page and 'class="flags"' in page
    assert "Only 4 customers in the control group" in page
    assert "(fisher)" in page
    console = Console(record=True, width=200)
    print_report(report, console)
    out = console.export_text()
    assert "control group too small" in out and "fisher" in out
    assert "Only 4 customers in the control group" in out


def test_terminal_tables(with_control):
    console = Console(record=True, width=200)
    print_report(with_control, console)
    out = console.export_text(clear=False)
    assert "Success of winback-email" in out and "the campaign worked" in out
    for heading in ("Overall", "By wave", "By channel", "By A/B variant", "By score decile"):
        assert heading in out
    for key in ("2026-11-24", "2026-12-01", "email", "call"):
        assert key in out
    assert "not significant" in out
    assert "14.0%" in out and "10.0%" in out  # overall treated and control rates
    assert "+4.0 [2.0, 6.0]" in out  # overall lift in points with its CI
    assert "< 0.001 (z)" in out
    # significant results in colour
    styled = console.export_html(inline_styles=True)
    assert re.search(r'<span style="color: #008000; [^"]*font-weight: bold">\+4\.0 \[2\.0, 6\.0\]</span>', styled)


def test_terminal_output_is_not_markup(with_control):
    with_control.campaign = "[bold red]x[/]"
    with_control.segments[3].key = "[link=http://evil]e[/link]"
    with_control.notes = ["[/]broken"]
    console = Console(record=True, width=200)
    print_report(with_control, console)  # raises MarkupError if data is read as markup
    out = console.export_text()
    assert "[bold red]x[/]" in out and "[link=http://evil]e[/link]" in out and "[/]broken" in out


def test_markdown_has_tables(with_control):
    md = markdown_report(with_control)
    assert md.startswith("# Success of campaign winback\\_email") or md.startswith(
        "# Success of campaign winback-email"
    )
    assert "| Segment | Treated | Control |" in md
    assert re.search(r"^\|---\|---:\|", md, re.M)
    assert "## By channel" in md and "| email |" in md
    assert "the campaign worked" in md
    assert "Wave 2026-12-01 is still inside" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| Segment")]
    assert len(rows) == len(with_control.segments)


def test_markdown_escapes_data(with_control):
    with_control.campaign = "<script>x</script>"
    with_control.segments[3].key = "a|b [x](http://evil)"
    md = markdown_report(with_control)
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "a\\|b \\[x\\](http://evil)" in md
    # every table row keeps its number of columns
    widths = {len(re.findall(r"(?<!\\)\|", line)) for line in md.splitlines() if line.startswith("|")}
    assert len(widths) == 1


def test_table_rows_are_json(with_control):
    rows = table_rows(with_control)
    assert len(rows) == len(with_control.segments)
    assert rows[0]["dimension"] == "overall" and rows[0]["treated"] == 9000
    assert rows[0]["absolute_lift"] == pytest.approx(0.04, abs=1e-4)
    assert rows[0]["significant"] is True
    json.dumps(rows, allow_nan=False)
    assert {r["dimension"] for r in rows} == {"overall", "wave", "channel", "variant", "score_decile"}


def test_significant_decrease_is_said_and_coloured_red():
    report = SuccessReport(
        campaign="oops",
        goal="response",
        window_days=7,
        waves=["w1"],
        segments=[segment("overall", "all", 9000, 1000, 700, 110, p=0.002, flags=["negative lift"])],
        curve=[],
        gains=[],
        notes=[],
    )
    assert headline(report).endswith("the campaign lowered the success rate.")
    assert 'class="headline harmed"' in render_html(report)
    console = Console(record=True, width=200)
    print_report(report, console)
    assert "negative lift" in console.export_text(clear=False)
    assert re.search(
        r'<span style="color: #800000; [^"]*font-weight: bold">-3\.2 \[', console.export_html(inline_styles=True)
    )
