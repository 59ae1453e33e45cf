"""The success report as one self-contained HTML page: ``render_html(report)`` and ``write_html(report, path)``.

The page needs no scripts, fonts or styles from elsewhere (it opens offline): any sample-ratio
mismatch first, the headline with its details and a "data as of" stamp (``formatting.stamp``), the
reading line while a success window is open, the notes and flags, the four charts of
``orchestrator.success.charts``, then two tables of every segment: results with cost and ROI
(currency in the headings) and a Status column saying which are provisional (window still open),
then the details (relative lift, revenue per customer and ``EXTRA_COLUMNS``), and the methods.

Text from data is escaped as HTML entities. On a phone, tables stack into "column: value" cards
below 720 px and text stays >= 10 px at 420 px (``tests/success/test_report_reading.py``).
``PAGE_CSS`` is the page's style, shared with ``global_render``. ``write_html`` writes the page
with the engine's private file mode (0600), creating folders.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.settings import private_dir, private_file
from orchestrator.success.chart_svg import escape
from orchestrator.success.charts import curve_chart, gains_chart, lift_chart, trend_chart
from orchestrator.success.formatting import (
    currency,
    details,
    headline,
    provisional,
    provisional_text,
    reading_line,
    segment_label,
    stamp,
    subtitle,
    verdict,
    warnings,
)
from orchestrator.success.table_cells import COLUMNS, EXTRA_COLUMNS, by_dimension, cells, extra_cells

if TYPE_CHECKING:
    from orchestrator.success.report_types import Segment, SuccessReport

__all__ = ["PAGE_CSS", "render_html", "write_html"]


MAIN_CELLS = (0, 1, 2, 3, 4, 5, 7, 8, 10, 11, 12)  # of ``cells``: results, cost and ROI first
DETAIL_CELLS = (0, 6, 9)  # then relative lift and revenue per customer, with ``EXTRA_COLUMNS``
_MONEY_CELLS = (10, 11)


def _heading(report: SuccessReport, i: int) -> str:
    code = currency(report)
    return f"{COLUMNS[i]} ({code})" if code and i in _MONEY_CELLS else COLUMNS[i]


def _table(report: SuccessReport, columns: list[str], rows_of, numeric) -> str:
    """A table that stacks on narrow screens: every cell carries its column's name (``data-label``)."""
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in columns)
    body = []
    for _dimension, heading, segments in by_dimension(report):
        body.append(f'<tr class="group"><th scope="rowgroup" colspan="{len(columns)}">{escape(heading)}</th></tr>')
        for s in segments:
            kind = verdict(s).replace(" ", "-") + (" provisional" if provisional(s) else "")
            tds = []
            for i, (label, c) in enumerate(zip(columns, rows_of(s), strict=True)):
                cls = ("num " if i in numeric else "") + _slug(label)
                tag = 'th scope="row"' if i == 0 else "td"
                tds.append(f'<{tag} class="{cls}" data-label="{escape(label)}">{escape(c)}</{tag.split()[0]}>')
            body.append(f'<tr class="{kind}">{"".join(tds)}</tr>')
    return f'<table class="stack"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _slug(label: str) -> str:
    return "c-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _segments_table(report: SuccessReport) -> str:
    """Results, cost and ROI (one table), then the statistical details (a second one)."""
    main = [_heading(report, i) for i in MAIN_CELLS] + ["Status", "Flags"]

    def main_row(s: Segment) -> list[str]:
        c = cells(s)
        status = provisional_text(s) or "final"
        return [c[i] for i in MAIN_CELLS] + [status, ", ".join(s.flags)]

    detail = [COLUMNS[i] for i in DETAIL_CELLS] + EXTRA_COLUMNS[1:]

    def detail_row(s: Segment) -> list[str]:
        c = cells(s)
        return [c[i] for i in DETAIL_CELLS] + extra_cells(s)[1:]

    return (
        _table(report, main, main_row, set(range(1, len(MAIN_CELLS))))
        + "<h3>Details: relative lift, revenue per customer, corrected and adjusted</h3>"
        + _table(report, detail, detail_row, set(range(1, len(detail) - 2)) | {len(detail) - 1})
    )


def _flags(report: SuccessReport) -> str:
    items = [
        f"<li><b>{escape(segment_label(s))}</b>: {escape(', '.join(s.flags))}</li>" for s in report.segments if s.flags
    ]
    if not items:
        return ""
    return f'<section class="flags"><h2>Flags</h2><ul>{"".join(items)}</ul></section>'


def _notes(report: SuccessReport) -> str:
    if not report.notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return f'<section class="notes" role="note"><h2>Notes</h2><ul>{items}</ul></section>'


PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#f4f4f6;color:#1a1a1a;line-height:1.4;font-size:16px}
section,figure{background:#fff;padding:1rem 1.5rem;margin:0 0 1.5rem;border-radius:8px;box-shadow:0 1px 3px #0002}
.headline{border-left:8px solid #6b6b6b}.headline p.result{font-size:1.4rem;font-weight:600;margin:.2rem 0 .6rem}
.headline.worked{border-color:#009E73}.headline.harmed{border-color:#D55E00}.headline.unmeasured{border-color:#E69F00}
.notes,.flags{border-left:8px solid #E69F00;background:#fff8e6}
.sub,.stamp{color:#444}.stamp{font-size:.9rem}.nochart{font-style:italic;color:#444}
figure svg{display:block;height:auto}figcaption{color:#444;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;width:100%}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e4e4e8;text-align:left;vertical-align:top}
thead th{font-size:.8rem;color:#333}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.group th{background:#eef;font-size:.95rem}
tr.worked td.c-lift-points-95-ci,tr.worked td.c-roi{color:#00704f;font-weight:700}
tr.harmed td.c-lift-points-95-ci,tr.harmed td.c-roi{color:#b13c00;font-weight:700}
tr.provisional td.c-status{color:#8a5a00;font-weight:600}td.c-flags{color:#8a5a00}
.srm{border-left:8px solid #D55E00;background:#fdecea;font-weight:600}
.reading{border-left:8px solid #0072B2}.reading.early{border-color:#E69F00;background:#fff8e6;font-weight:600}
@media (max-width:720px){
body{margin:.5rem}section,figure{padding:.6rem .7rem;margin-bottom:1rem}
h1{font-size:1.4rem}.headline p.result{font-size:1.15rem}
table.stack,table.stack tbody,table.stack tr,table.stack th,table.stack td{display:block;width:auto}
table.stack thead,table.stack td:empty{display:none}
table.stack tr{border-bottom:2px solid #c8c8d0;padding:.3rem 0}
table.stack tr.group{border:0}
table.stack td,table.stack tbody th[scope=row]{display:flex;justify-content:space-between;gap:.8rem;
border:0;padding:.15rem .2rem;text-align:right;white-space:normal;overflow-wrap:anywhere}
table.stack td::before,table.stack tbody th[scope=row]::before{content:attr(data-label);font-weight:600;
text-align:left;color:#333;flex:0 0 45%}
}
"""


def _methods(report: SuccessReport) -> str:
    methods = getattr(report, "methods", None) or {}
    alpha = getattr(report, "alpha", 0.05)
    items = "".join(f"<li><b>{escape(k.replace('_', ' '))}</b>: {escape(v)}</li>" for k, v in methods.items())
    return (
        f'<section class="methods"><h2>Methods</h2><p>Significant: p &lt; {escape(f"{alpha:g}")}. '
        f"Intervals are 95% confidence intervals.</p><ul>{items}</ul></section>"
    )


def _warnings(report: SuccessReport) -> str:
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings(report))
    if not items:
        return ""
    return f'<section class="srm" role="alert"><h2>Sample ratio mismatch</h2><ul>{items}</ul></section>'


def _reading(report: SuccessReport) -> str:
    line = reading_line(report)
    if line is None:
        return ""
    kind = "early" if report.overall().reading == "too early" else "ready"
    return f'<section class="reading {kind}" role="status"><p>{escape(line)}</p></section>'


def render_html(report: SuccessReport) -> str:
    """The whole page as a string."""
    kind = verdict(report.overall()).replace(" ", "-")
    facts = "".join(f"<li>{escape(line)}</li>" for line in details(report))
    charts = trend_chart(report) + lift_chart(report) + curve_chart(report) + gains_chart(report)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Success of {escape(report.campaign)}</title><style>{PAGE_CSS}</style></head>
<body><main>
<h1>Success of campaign {escape(report.campaign)}</h1>
{_warnings(report)}<section class="headline {kind}"><p class="sub">{escape(subtitle(report))}</p>
<p class="result">{escape(headline(report))}</p><ul>{facts}</ul>
<p class="stamp">{escape(stamp(report)[0].upper() + stamp(report)[1:])}.</p></section>
{_reading(report)}{_notes(report)}{_flags(report)}
<h2>Charts</h2>
{charts}
<h2>All segments</h2>
<section>{_segments_table(report)}</section>
{_methods(report)}
</main></body></html>
"""


def write_html(report: SuccessReport, path: Path) -> Path:
    """Write the report as one self-contained HTML page to ``path`` (folders created)."""
    path = Path(path)
    private_dir(path.parent)
    with private_file(path) as handle:  # 0600, like every file the engine writes
        handle.write(render_html(report).encode("utf-8"))
    return path
