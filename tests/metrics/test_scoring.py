"""qa.metrics.scoring: one way to score a metric, used by `qa run` (the engine) and `qa score` alike: NaN is an error
row in both, and both give the same status and detail for the same pixels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qa.engine.run import RunConfig, RunEngine
from qa.metrics.base import ImageMetric, ImageSample, MetricValue, NotApplicable
from qa.metrics.catalog import METRICS
from qa.metrics.scoring import score_sample
from qa.score import score_folders
from qa.store import Store
from qa.store import results as store_results
from tests.helpers import make_refset


class ReturnsNaN(ImageMetric):
    name = "returns_nan"

    def compute(self, sample: ImageSample) -> MetricValue:
        return MetricValue(float("nan"))


class Raises(ImageMetric):
    name = "raises"
    needs = ()

    def compute(self, sample: ImageSample) -> MetricValue:
        raise RuntimeError("kaputt")


class NotForThis(ImageMetric):
    name = "not_for_this"
    needs = ()

    def compute(self, sample: ImageSample) -> MetricValue:
        raise NotApplicable("only for stochastic decoders")


class NeedsLatent(ImageMetric):
    name = "needs_latent"
    needs = ("latent",)

    def compute(self, sample: ImageSample) -> MetricValue:
        return MetricValue(1.0)


class Perfect(ImageMetric):
    name = "perfect"

    def compute(self, sample: ImageSample) -> MetricValue:
        return MetricValue(math.inf, map=np.zeros(sample.output.shape[:2], np.float32), detail="identical")


PLANTED = [ReturnsNaN, Raises, NotForThis, NeedsLatent, Perfect]


def test_score_sample_statuses() -> None:
    img = np.full((8, 8, 3), 0.5, np.float32)
    sample = ImageSample("c1", img, reference=img)
    got = {cls.name: score_sample(cls(), sample) for cls in PLANTED}
    assert (got["returns_nan"].value, got["returns_nan"].status) == (None, "error")
    assert got["returns_nan"].detail == "c1: metric returned NaN"
    assert (got["raises"].status, got["raises"].detail) == ("error", "c1: RuntimeError: kaputt")
    assert (got["not_for_this"].status, got["not_for_this"].detail) == (
        "missing", "not applicable: only for stochastic decoders")
    assert (got["needs_latent"].status, got["needs_latent"].detail) == ("missing", "not applicable: needs latent")
    assert (got["perfect"].value, got["perfect"].status, got["perfect"].detail) == (math.inf, "ok", "identical")
    assert got["perfect"].map is not None
    assert score_sample(Perfect(), sample, unavailable="weights missing: run qa weights fetch x") == \
        score_sample(Raises(), sample, unavailable="weights missing: run qa weights fetch x")


def test_qa_run_and_qa_score_give_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity decoder's outputs are the reference pixels; `qa score` of the reference folder against itself
    scores the same pixels: every planted metric gets the same status and detail (and value) from both."""
    refset = make_refset(tmp_path / "ref", n=1, side=32)
    METRICS.names()
    for cls in PLANTED:
        monkeypatch.setitem(METRICS._targets, cls.name, cls)  # noqa: SLF001 - test-only registration
    names = [cls.name for cls in PLANTED]
    store = Store(tmp_path / "qa.duckdb")
    run_id = RunEngine(store).start(RunConfig(decoder="identity", reference_set=str(refset), seeds=[0],
                                              metrics=names, progress=False))
    engine = {r.metric: r for r in store_results.image_metric_rows(store, run_id) if r.seed == 0}
    score_folders(refset, [refset], tmp_path / "scores.csv", metrics=names, encoder="area-x1")  # latent: the image
    scored = pd.read_csv(tmp_path / "scores.csv", keep_default_na=False).set_index("metric")
    for name in names:
        row = scored.loc[name]
        assert (engine[name].status, engine[name].detail) == (row.status, row.detail), name
    assert engine["returns_nan"].status == "error" and engine["returns_nan"].value is None
    assert engine["perfect"].value == math.inf and float(scored.loc["perfect"].value) == math.inf


class Located(ImageMetric):
    name = "located"
    needs = ()

    def compute(self, sample: ImageSample) -> MetricValue:
        return MetricValue(0.5, extra={"peak_y": 3.0, "peak_x": 4.0})


def test_a_metrics_side_numbers_reach_the_caller_and_errors_have_none() -> None:
    """``Scored.extra``: what the engine reads to put the first crop where ``invented_peak`` located its region."""
    sample = ImageSample(case_id="c", output=np.zeros((4, 4, 3), np.float32))
    assert score_sample(Located(), sample).extra == {"peak_y": 3.0, "peak_x": 4.0}
    assert score_sample(Raises(), sample).extra == {} and score_sample(ReturnsNaN(), sample).extra == {}
