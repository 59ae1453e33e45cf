"""How a chart becomes part of a page: matplotlib settings, the palette, inline SVG in an HTML ``<figure>``.

Used by the success report's ``charts`` and page (``html_page``) and by ``global_render``.

- Charts are drawn on ``matplotlib.figure.Figure`` objects, never pyplot, so no GUI backend or
  global figure state is involved (rendering is Agg/SVG only), under ``CHART_RC`` (12-unit text,
  text kept as text in the SVG). Phone width: success charts are ``CHART_WIDTH`` inches wide.
- ``inline_svg(fig, title, description)``: the figure as an ``<svg>`` that scales with the page
  (``width="100%"``, at most its natural size), with ``role="img"``, a title and a description
  (which lists the plotted numbers); ids are unique within the process.
- ``chart_figure(title, caption, svg, why)``: the ``<figure>``: heading, the chart or, when there is
  none, the sentence ``why``, and the caption.
- ``escape(text)``: text from data as HTML entities.
- Colours are the Okabe-Ito palette (``BLUE``, ``ORANGE``, ``GREEN``, ``VERMILLION``, ``GREY``),
  safe for colour blindness.
"""

from __future__ import annotations

import html
import io
import itertools
import re
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

BLUE, ORANGE, GREEN, VERMILLION, GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#6b6b6b"
CHART_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.size": 12,
    "legend.fontsize": 12,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "axes.labelsize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
CHART_WIDTH = 4.8
"""Inches (72 SVG units each): narrow, so the 12-unit text stays above 10 px when a 420 px screen
shrinks the chart to its width; on wide screens a chart is shown at most at its natural size."""
_ids = itertools.count(1)


def escape(text: object) -> str:
    """Text from data as HTML: entities, quotes included."""
    return html.escape(str(text), quote=True)


def inline_svg(fig: Figure, title: str, description: str) -> str:
    """The figure as an inline ``<svg>`` with role, title and description."""
    buf = io.StringIO()
    with mpl.rc_context(CHART_RC):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    end = svg.index(">") + 1
    n = next(_ids)
    opening = svg[:end]
    # reflow: the width follows the page (at most the natural size), the height the viewBox's ratio
    natural = re.search(r'width="([0-9.]+)pt"', opening)
    opening = re.sub(r'\s(width|height)="[^"]*"', "", opening)
    limit = f' style="max-width:{float(natural.group(1)) * 4 / 3:.0f}px"' if natural else ""
    opening = opening.replace(
        "<svg", f'<svg width="100%"{limit} role="img" aria-labelledby="chart{n}-title chart{n}-desc"', 1
    )
    return (
        opening
        + f'<title id="chart{n}-title">{escape(title)}</title><desc id="chart{n}-desc">{escape(description)}</desc>'
        + svg[end:]
    )


def chart_figure(title: str, caption: str, svg: str | None, why: str | None = None) -> str:
    """A ``<figure>``: the heading, the chart (or the sentence ``why`` there is none), the caption."""
    body = svg if svg is not None else f'<p class="nochart">{escape(why or "")}</p>'
    return f"<figure><h3>{escape(title)}</h3>{body}<figcaption>{escape(caption)}</figcaption></figure>"
