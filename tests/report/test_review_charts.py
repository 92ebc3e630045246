"""Issue 27, problem 3, drawn by headless Chromium: a trend with two decoders of very different scale keeps the
smaller one's change visible, and the latest-runs table fits a 1400 px window with a long missing-weights reason
said once.

The store: ``quiet`` (bicubic x4 plus a blur setting: mean absolute error about 0.02, worsened by a blur in its
second run) and ``loud`` (bicubic x4 plus strong noise: error about 0.3, unchanged), two runs each, and four more
decoders with one run each, all with a metric whose weights are absent (a long reason with an unbreakable path).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.metrics.base import ImageMetric, ImageSample, MetricValue
from qa.metrics.catalog import METRICS
from qa.report.browser import render, screenshot
from qa.report.build import write_report
from qa.report.charts import colours
from qa.report.export import find_browser
from qa.store import Store
from tests.gate.helpers import TunableBicubic
from tests.helpers import make_refset, seeded_noise
from tests.report.helpers import MAP_METRIC, AbsDiffMap

LONG_REASON = ("weights 'alexnet' absent; fix: `qa weights fetch alexnet` (downloads https://download.pytorch.org/"
               "models/alexnet-owt-7be5be79.pth) or `qa weights import /very/long/path/to/a/weights/folder/that/does/"
               "not/break/alexnet-owt-7be5be79.pth`")


class Loud(BicubicDecoder):
    """Bicubic x4 plus seeded noise of std 0.4: a decoder whose error is an order of magnitude above ``quiet``'s."""

    family = "loud"
    stochastic = True  # its output depends on the seed

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return (out + 0.4 * seeded_noise(out, batch.case_ids, seed)).clamp(0, 1)


class LongWeights(ImageMetric):
    """A metric whose weights are absent, with a reason as long as lpips's."""

    name = "review_test_longweights"

    def unavailable_reason(self) -> str | None:
        return LONG_REASON

    def compute(self, sample: ImageSample) -> MetricValue:  # pragma: no cover - never called
        raise AssertionError("unavailable metric computed")


DECODER_NAMES = ("quiet", "loud", "extra-a", "extra-b", "extra-c", "extra-d")


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("charts")
    refset = make_refset(root / "set", n=4)
    with pytest.MonkeyPatch.context() as mp:
        DECODERS.names(), METRICS.names()
        for name in DECODER_NAMES:
            mp.setitem(DECODERS._targets, name, Loud if name == "loud" else TunableBicubic)  # noqa: SLF001
        mp.setitem(METRICS._targets, MAP_METRIC, AbsDiffMap)  # noqa: SLF001
        mp.setitem(METRICS._targets, LongWeights.name, LongWeights)  # noqa: SLF001
        mp.chdir(root)
        store = Store(root / "qa.duckdb")
        engine = RunEngine(store)

        def run(name: str, **settings: object) -> str:
            return engine.start(RunConfig(decoder=name, reference_set=str(refset), seeds=[0], progress=False,
                                          metrics=[MAP_METRIC, LongWeights.name], settings=settings))

        runs = {"quiet": [run("quiet"), run("quiet", blur=0.7)], "loud": [run("loud"), run("loud")]}
        for name in DECODER_NAMES[2:]:
            run(name)
        report = write_report(store, out=root / "charts.html")
        yield {"root": root, "report": report, "runs": runs, "store": store}


def _trend_traces(report: Path) -> list[dict[str, object]]:
    text = report.read_text(encoding="utf-8")
    spec = json.loads(re.search(r'<script type="application/json" id="fig-trends">(.*?)</script>', text, re.S)
                      .group(1).replace("\\u003c", "<"))  # type: ignore[union-attr]
    return [t for t in spec["data"] if t.get("mode") == "lines+markers"]


def test_trend_puts_both_decoders_on_the_scale_of_their_own_change(charts: dict[str, object]) -> None:
    traces = {t["name"]: t["y"] for t in _trend_traces(Path(str(charts["report"])))}
    quiet, loud = traces["quiet"], traces["loud"]
    store: Store = charts["store"]  # type: ignore[assignment]
    values = {r: float(v) for r, v in store.query(  # type: ignore[arg-type]
        "select run_id, value from set_results where metric = ?", [MAP_METRIC])}
    q0, q1 = (values[r] for r in charts["runs"]["quiet"])  # type: ignore[index]
    l0, _ = (values[r] for r in charts["runs"]["loud"])  # type: ignore[index]
    assert l0 > 5 * q1  # the two decoders differ in scale by far more than quiet's change
    # anchored on each decoder's first run (no approval here): 0 there, then how much worse in % of it
    assert quiet[0] == 0.0 and quiet[1] == pytest.approx(100 * (q1 - q0) / q0) and quiet[1] > 1
    assert loud == [0.0, 0.0]


def _lines(mask: np.ndarray, min_width: int = 100) -> list[tuple[int, int]]:
    """(width, height) in px of every connected region of ``mask`` at least ``min_width`` wide (a trace's line
    across a panel; a box of the distributions plot is narrower)."""
    from skimage.measure import label, regionprops

    return [(r.bbox[3] - r.bbox[1], r.bbox[2] - r.bbox[0]) for r in regionprops(label(mask, connectivity=2))
            if r.bbox[3] - r.bbox[1] >= min_width]


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (CI installs it)")
def test_trend_in_chromium_keeps_the_smaller_decoder_visible(charts: dict[str, object]) -> None:
    """The page as drawn: quiet's trend line (its colour) climbs across its panel although loud's values are an
    order of magnitude larger; loud's (unchanged) line is flat."""
    report = Path(str(charts["report"]))
    shot = screenshot(report, report.with_name("page.png"), size=(1400, 3000))
    with Image.open(shot) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    palette = colours(DECODER_NAMES)
    found = {}
    for name in ("quiet", "loud"):
        colour = np.array([int(palette[name][i:i + 2], 16) for i in (1, 3, 5)])
        found[name] = _lines(np.abs(rgb - colour).sum(axis=2) < 40)
    assert found["quiet"] and max(h for _, h in found["quiet"]) > 60, found  # climbs visibly, not flat
    assert found["loud"] and min(h for _, h in found["loud"]) < 12, found  # no change: flat at 0


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (CI installs it)")
def test_latest_runs_table_fits_1400_px_with_long_reasons_said_once(charts: dict[str, object]) -> None:
    report = Path(str(charts["report"]))
    text = report.read_text(encoding="utf-8")
    metrics = text[text.index('<section id="metrics">'):text.index("</section>", text.index('<section id="metrics">'))]
    assert metrics.count("alexnet-owt-7be5be79.pth") == 2  # the reason (it names the file twice) said once
    run = render(report, size=(1400, 1000))
    assert run.attr("page-width") is not None and run.attr("page-width") <= 1400, run.attr("page-width")  # type: ignore[operator]
    assert 0 < run.attr("metrics-table-right") <= 1400 - 24  # type: ignore[operator]
    page = screenshot(report, report.with_name("metrics.png"), size=(1400, 900), fragment="metrics")
    assert page.is_file()
