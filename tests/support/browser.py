"""A real headless browser for tests: Debian's ``chromium``, driven from the command line.

``measure_page(html, width)`` opens the page in ``chromium --headless`` at a viewport ``width``
CSS pixels wide (device scale 1), runs ``MEASURE`` in it after layout, and returns what it found:
text smaller than 10 px (SVG text scaled by the chart's own scale on screen), elements that stick
out of the viewport, tables whose ROI cells are off-screen, the page's scroll width. The script is
added to a copy of the page (the report itself has no scripts); its result comes back through
``--dump-dom`` (see ``WRAPPER``). No driver library and no network: the browser reads the file.

``chromium()`` is the browser's path or None; ``SKIP_WITHOUT_BROWSER`` skips a test without it,
except where ``CAMPAIGN_TEST_REQUIRE_BROWSER=1`` (.ci/run installs it and sets that): there it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TIMEOUT = float(os.environ.get("CAMPAIGN_TEST_BROWSER_TIMEOUT", "120"))

MEASURE = r"""
<script>
(function () {
  const W = window.innerWidth;
  const out = {width: W, scrollWidth: document.documentElement.scrollWidth, texts: 0, small: [],
               roi_cells: 0, roi_offscreen: [], overflowing: [], min_font: 1e9};
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest("script,style,title,desc,#measure")) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not rendered
    let size = parseFloat(getComputedStyle(el).fontSize);
    if (el instanceof SVGElement) {
      const m = el.getScreenCTM();
      size *= Math.hypot(m.a, m.b);
    }
    out.texts++;
    out.min_font = Math.min(out.min_font, size);
    if (size < 10) out.small.push([text.slice(0, 40), Math.round(size * 100) / 100]);
  }
  document.querySelectorAll("td.c-roi").forEach((td) => {
    out.roi_cells++;
    const r = td.getBoundingClientRect();
    if (r.left < 0 || r.right > W + 0.5) out.roi_offscreen.push([td.textContent, r.left, r.right]);
  });
  document.querySelectorAll("body *").forEach((el) => {
    if (el.closest("svg") && el.tagName.toLowerCase() !== "svg") return;
    const r = el.getBoundingClientRect();
    const scrolls = el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible";
    if (r.right > W + 0.5 || scrolls) out.overflowing.push([el.tagName, el.className && String(el.className), r.right]);
  });
  window.parent.postMessage(JSON.stringify(out), "*");
})();
</script>
"""


# Chromium's headless window is at least 500 px wide, so the page is measured in an iframe of
# exactly the wanted width (its own viewport: media queries and 100% widths follow it); the
# iframe posts its findings to this wrapper, whose DOM --dump-dom prints.
WRAPPER = """<!doctype html><html><body style="margin:0">
<script>window.addEventListener("message", (e) => {{
  const pre = document.createElement("pre"); pre.id = "measure"; pre.textContent = e.data;
  document.body.appendChild(pre); }});</script>
<iframe src="page.html" style="width:{width}px;height:{height}px;border:0;display:block"></iframe>
</body></html>"""


def chromium() -> str | None:
    """The headless browser's path (Debian's ``chromium``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def measure_page(page: str, width: int, height: int = 900) -> dict:
    """Open ``page`` (HTML text) ``width`` px wide in headless Chromium; what ``MEASURE`` found."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="browser-") as folder:
        (Path(folder) / "page.html").write_text(page.replace("</body>", MEASURE + "</body>", 1), encoding="utf-8")
        path = Path(folder) / "wrapper.html"
        path.write_text(WRAPPER.format(width=width, height=height), encoding="utf-8")
        done = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",  # tests run as root in CI
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--force-device-scale-factor=1",
                f"--window-size={max(width, 800) + 40},{height + 40}",
                f"--user-data-dir={Path(folder) / 'profile'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                path.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    found = re.search(r'<pre id="measure">(.*?)</pre>', done.stdout, re.S)
    if found is None:
        raise RuntimeError(f"chromium did not run the measuring script (exit {done.returncode}): {done.stderr[-2000:]}")
    import html

    return json.loads(html.unescape(found.group(1)))


SKIP_WITHOUT_BROWSER = pytest.mark.skipif(
    chromium() is None and os.environ.get("CAMPAIGN_TEST_REQUIRE_BROWSER") != "1",
    reason="needs Debian's chromium (apt-get install -y chromium; .ci/run installs it)",
)
