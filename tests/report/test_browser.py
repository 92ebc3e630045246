"""The report in a real browser: headless Chromium opens it from disk, the charts render, the console stays
silent, hostile names stay text, and a screenshot shows a drawn page. CI installs Debian's chromium."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from PIL import Image

from qa.report.browser import render, screenshot
from qa.report.build import write_report
from qa.report.export import find_browser
from tests.report.conftest import ReportStore
from tests.report.helpers import XSS

pytestmark = pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (CI installs it)")


@pytest.fixture(scope="module")
def report_file(report_store: ReportStore) -> Path:
    return write_report(report_store.store, out=report_store.root / "browser.html")


def test_charts_render_without_console_errors(report_file: Path) -> None:
    text = report_file.read_text(encoding="utf-8")
    n_plots = len(re.findall(r'<div class="plot" ', text))
    assert n_plots == 3
    run = render(report_file)
    assert run.console == [], run.console  # no errors, no CSP violations, nothing logged at all
    assert run.attr("js-errors") == 0
    assert run.attr("plots-rendered") == n_plots
    assert run.dom.count('class="plot-container plotly"') == n_plots
    assert run.dom.count('class="main-svg"') >= 2 * n_plots
    assert "boxlayer" in run.dom and 'class="scatterlayer' in run.dom  # traces were drawn
    # hostile names are text: no script element or injected image was created, the legend shows the name
    assert XSS not in run.dom and '<img src="x"' not in run.dom
    legend = [html.unescape(t) for t in re.findall(r'class="legendtext"[^>]*>([^<]*)<', run.dom)]
    assert XSS in legend, legend
    assert run.attr("ready-ms") is not None
    # every thumbnail element got its embedded image (CSS background), maps included
    assert run.attr("thumbs") == text.count('class="img ') > 0
    assert run.attr("thumbs-with-image") == run.attr("thumbs")


def test_screenshot_shows_a_drawn_page(report_file: Path) -> None:
    shot = screenshot(report_file, report_file.with_suffix(".png"), size=(1400, 2400))
    with Image.open(shot) as img:
        assert img.size == (1400, 2400)
        rgb = img.convert("RGB")
        colours = rgb.getcolors(1 << 22) or []
        assert len(colours) > 500  # text, tables and charts, not a blank or error page
        header = rgb.crop((0, 0, 1400, 40)).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
        assert sum(header) < 200  # the dark report header was painted, i.e. our page (not an error page)
