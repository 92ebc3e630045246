"""The report as a release reviewer reads it, with two runs of one decoder: an approved run and a candidate that
adds a seeded grain (invented detail) to a few images. The summary names the failed check, the candidate-vs-
approved view lists the grainy images first, the settings diff is shown, and headless Chromium draws the page and
the full-resolution comparison (screenshots)."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.gate.evaluate import gate_run
from qa.gate.policy import load_policy
from qa.gate.signoff import record_signoff
from qa.metrics.declarations import declaration
from qa.report.browser import render, screenshot
from qa.report.build import write_report
from qa.report.export import find_browser
from qa.store import Store
from tests.gate.signing_helpers import export_reviewer, make_reviewer
from tests.helpers import make_refset
from tests.session.helpers import SUITES

#: images the candidate adds an invented texture to, with its strength relative to ``grain`` (the others are
#: decoded exactly as by the approved run): tile01 is the planted high-invention image (invented_detail about
#: 0.0 -> 0.7), tile04 a faint one (about +0.003)
GRAINY = {"tile01": 1.0, "tile04": 0.4}


class GrainyBicubic(BicubicDecoder):
    """Bicubic x4 plus a fine diagonal grating (period 3 px) of amplitude ``grain`` x ``GRAINY[case]`` on the cases in
    ``GRAINY``: a planted invention (i.i.d. grain would not do: invented_detail scores noise near 0)."""

    family = "grainy"

    def __init__(self, name: str | None = None, device: str = "cpu", grain: float = 0.0) -> None:
        super().__init__(name, device)
        self.settings["grain"] = float(grain)
        self.grain = float(grain)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        h, w = out.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h, dtype=out.dtype), torch.arange(w, dtype=out.dtype), indexing="ij")
        texture = torch.sin(2 * math.pi * (xx + yy) / 3.0)
        for i, case in enumerate(batch.case_ids):
            if case in GRAINY and self.grain > 0:
                out[i] = out[i] + GRAINY[case] * self.grain * texture
        return out.clamp(0, 1)


POLICY_TOML = """[policy]
track = "upscale"
n_boot = 500

[metrics.invented_detail]
group = "invented"
relative_margin = 0.05

[metrics.invented_peak]
group = "invented"
image_relative_margin = 0.5

[metrics.psnr]
min = 10.0
margin = 0.5
"""


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("review")
    refset = make_refset(root / "set", n=6)
    with pytest.MonkeyPatch.context() as mp:
        DECODERS.names()
        mp.setitem(DECODERS._targets, "grainy", GrainyBicubic)  # noqa: SLF001 - test-only registration
        mp.chdir(root)
        store = Store(root / "qa.duckdb")
        cfg = RunConfig(decoder="grainy", reference_set=str(refset), metrics=["psnr", "invented_detail", "invented_peak"],
                        progress=False)
        policy_file = root / "review-policy.toml"
        policy_file.write_text(POLICY_TOML)
        policy = load_policy(policy_file)
        export_reviewer(mp, *make_reviewer(root, "ana"))
        approved = RunEngine(store).start(cfg)
        gate_run(store, approved, policy, "none")
        record_signoff(store, approved, "ana", "approve", "release 1", policy=policy_file)
        (root / "qa.toml").write_text("[decoders.grainy]\ngrain = 0.05\n")
        candidate = RunEngine(store).start(cfg)
        outcome = gate_run(store, candidate, policy, "approved")
        report = write_report(store, out=root / "review.html")
        yield {"root": root, "report": report, "approved": approved, "candidate": candidate, "outcome": outcome}


def _section(text: str, sid: str) -> str:
    start = text.index(f'<section id="{sid}">')
    return text[start: text.index("</section>", start)]


def test_summary_names_the_failed_check_and_settings(review: dict[str, object]) -> None:
    outcome = review["outcome"]
    assert outcome.verdict == "fail"  # type: ignore[attr-defined]
    text = Path(str(review["report"])).read_text(encoding="utf-8")
    assert text.index('<section id="summary">') < text.index('<section id="compare">') < text.index(
        '<section id="trends">')  # the report opens on the summary, then the comparison
    summary = _section(text, "summary")
    assert '<span class="failed-check">invented_detail vs approved</span>' in summary
    assert html.escape("grain 0.0 -> 0.05") in summary  # settings of the candidate against the approved run
    gates = _section(text, "gates")
    assert gates.count('<div class="gate">') == 2  # one gate per run


def test_compare_view_lists_the_grainy_images_first(review: dict[str, object]) -> None:
    text = Path(str(review["report"])).read_text(encoding="utf-8")
    compare = _section(text, "compare")
    order = re.findall(r'<div class="cmp-row" data-case="([^"]+)"', compare)
    assert sorted(order) == [f"tile{i:02d}" for i in range(6)]
    assert order[:2] == ["tile01", "tile04"], order  # most worsened first: the strong planted texture, then the faint
    # ranked by the metric the shipped upscale policy gates image by image, in its own units, with the allowance
    ranked = load_policy(SUITES / "policy_upscale.toml")  # the first invented metric with a worst-images rule
    name = next(r.metric for r in ranked.metrics.values() if r.group == "invented" and r.checks_worst_images())
    assert f"ranked by how much worse <b>{name}</b>" in compare and html.escape(declaration(name).unit) in compare
    rows = re.findall(r'<div class="cmp-row".*?(?=<div class="lightbox")', compare, re.S)  # a row, not its lightbox
    assert [r.count('aria-label="reference"') for r in rows] == [1] * 6 and 'class="cmp-legend"' in compare
    assert compare.count('class="lightbox"') == 6 and "change (more in candidate)" in compare


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (CI installs it)")
def test_release_view_in_headless_chromium(review: dict[str, object]) -> None:
    report = Path(str(review["report"]))
    run = render(report)
    assert run.console == [], run.console
    assert run.attr("js-errors") == 0 and run.attr("thumbs-with-image") == run.attr("thumbs")
    assert "invented_detail vs approved" in run.dom
    page = screenshot(report, report.with_suffix(".png"), size=(1400, 1600))
    with Image.open(page) as img:
        rgb = img.convert("RGB")
        assert len(rgb.getcolors(1 << 22) or []) > 500
        # the failed-checks headline (light red box) is painted near the top of the page
        top = rgb.crop((0, 0, 1400, 500))
        assert any(c[1] == (255, 244, 244) for c in top.getcolors(1 << 22) or [])
    # the comparison of the worst image opens on its anchor: both outputs with the yellow zoom frames
    shot = screenshot(report, report.with_name("cmp.png"), size=(1400, 1000), fragment="cmp-0-0")
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        yellow = sum(n for n, c in rgb.getcolors(1 << 22) or [] if c == (255, 235, 59))
        dark = rgb.crop((0, 0, 1400, 60)).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
        assert yellow > 1000, yellow  # two region frames and two zoom frames
        assert sum(dark) < 150  # the dark overlay covers the page


def _match(page: Image.Image, tile: Image.Image, side: int = 120, step: int = 4) -> tuple[float, int, int]:
    """(mean absolute error, x, y) of the best placement of ``tile`` drawn at ``side`` px in ``page`` (both
    reduced by ``step`` first: a coarse template match that tolerates the browser's resampling)."""
    import numpy as np

    small = np.asarray(tile.convert("L").resize((side // step, side // step), Image.Resampling.BOX), dtype=np.float32)
    big = page.convert("L")
    big = np.asarray(big.resize((big.width // step, big.height // step), Image.Resampling.BOX), dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(big, small.shape)
    err = np.abs(windows - small).mean(axis=(2, 3))
    y, x = np.unravel_index(int(np.argmin(err)), err.shape)
    return float(err[y, x]), int(x) * step, int(y) * step


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (CI installs it)")
def test_compare_view_in_chromium_ranks_the_planted_image_first_with_reference_and_legend(
        review: dict[str, object]) -> None:
    """Drawn by headless Chromium: the legend above the rows, and the planted high-invention image's (tile01)
    reference painted in the first row, above the second-ranked image's (tile04) reference."""
    report = Path(str(review["report"]))
    dom = render(report).dom
    compare = dom[dom.index('<section id="compare">'):]
    first = compare.index('class="cmp-row"')
    assert compare.index('class="cmp-legend"') < first and 'data-case="tile01" data-rank="1"' in compare[first - 40:]
    shot = screenshot(report, report.with_name("compare.png"), size=(1400, 1000), fragment="compare")
    refset = Path(str(review["root"])) / "set"
    with Image.open(shot) as page, Image.open(refset / "tile04.png") as t4, Image.open(refset / "tile01.png") as t1:
        page = page.convert("RGB")
        e4, _, y4 = _match(page, t4)
        e1, _, y1 = _match(page, t1)
        # the reference tiles are painted (a close match) and tile01's row is above tile04's
        assert e4 < 12 and e1 < 12, (e4, e1)
        assert y1 < y4, (y1, y4)
        # the legend's colour ramp ends in the overlay's full red, left of nothing but text
        red = sum(n for n, c in page.getcolors(1 << 22) or [] if abs(c[0] - 255) < 3 and abs(c[1] - 40) < 6
                  and abs(c[2] - 40) < 6)
        assert red > 20, red
