"""Decoders, metrics and store rows that exercise the report: a hostile decoder name, a metric with a map,
a metric that is always missing, gate and sign-off rows with hostile strings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.metrics.base import ImageMetric, ImageSample, MetricValue
from qa.metrics.catalog import METRICS
from qa.store import Store
from tests.helpers import seeded_noise

XSS = "<script>alert(1)</script>"
#: strings that must never reach the HTML unescaped (the second would close a <script> element early)
HOSTILE = (XSS, "</script><!--", '"><img src=x onerror=alert(2)>')
MAP_METRIC = "invented_test_absdiff"
MISSING_METRIC = "report_test_noweights"
MISSING_REASON = "weights for report_test_noweights are not installed here (qa weights import)"
UNKNOWN_METRIC = "ghost_metric_not_registered"


class NoisyBicubic(BicubicDecoder):
    """Stochastic bicubic x2: seeded Gaussian noise (sigma 0.03) on the upsampled image."""

    family = "noisy-bicubic"
    stochastic = True

    def __init__(self, name: str | None = None, device: str = "cpu", **settings: object) -> None:
        super().__init__(name, device, factor=2, **settings)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return (out + 0.03 * seeded_noise(out, batch.case_ids, seed)).clamp(0, 1)


class AbsDiffMap(ImageMetric):
    """Mean absolute luma difference to the reference in [0, 1]; its map is the per-pixel difference x4."""

    name = MAP_METRIC
    higher_is_better = False
    value_range = (0.0, 1.0)

    def compute(self, sample: ImageSample) -> MetricValue:
        w = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        diff = np.abs(sample.output @ w - sample.reference @ w)  # type: ignore[operator]
        return MetricValue(float(diff.mean()), map=np.clip(diff * 4.0, 0.0, 1.0))


class NoWeights(ImageMetric):
    """A metric whose weights are absent: every row is 'missing' with :data:`MISSING_REASON`."""

    name = MISSING_METRIC

    def unavailable_reason(self) -> str | None:
        return MISSING_REASON

    def compute(self, sample: ImageSample) -> MetricValue:  # pragma: no cover - never called
        raise AssertionError("unavailable metric computed")


@contextmanager
def registered() -> Iterator[None]:
    """Register the test decoder and metrics for the duration of the block (restored afterwards)."""
    with pytest.MonkeyPatch.context() as mp:
        DECODERS.names(), METRICS.names()  # load entry points first, so restoring keeps them
        mp.setitem(DECODERS._targets, XSS, NoisyBicubic)  # noqa: SLF001 - test-only registration, undone on exit
        mp.setitem(METRICS._targets, MAP_METRIC, AbsDiffMap)  # noqa: SLF001
        mp.setitem(METRICS._targets, MISSING_METRIC, NoWeights)  # noqa: SLF001
        yield


def build_store(store: Store, refset: Path, decoders: list[str], metrics: list[str], repeat: dict[str, int]) -> dict[str, list[str]]:
    """Run each decoder (``repeat[d]`` times, default 1) and return decoder -> run ids, oldest first."""
    engine = RunEngine(store)
    ids: dict[str, list[str]] = {}
    for d in decoders:
        for _ in range(repeat.get(d, 1)):
            ids.setdefault(d, []).append(engine.start(RunConfig(decoder=d, reference_set=str(refset), metrics=metrics,
                                                                seeds=[0, 1], progress=False)))
    return ids


def add_review_rows(store: Store, ids: dict[str, list[str]]) -> None:
    """A gate per latest run (hostile strings in details_json, one broken JSON), a sign-off with a hostile note,
    a set result of an unregistered metric, and an old run shifted 10 days back (outside --weekly)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.transaction() as con:
        for i, (decoder, runs) in enumerate(sorted(ids.items())):
            details = {"verdict": "fail" if decoder == XSS else "pass", "policy": HOSTILE[1],
                       "metrics": [{"metric": "psnr", "verdict": "pass", "candidate": 30.5, "baseline": 30.1,
                                    "ci_low": -0.2, "ci_high": 0.9, "margin": 0.2, "required": True},
                                   {"metric": MISSING_METRIC, "verdict": "missing", "reason": MISSING_REASON},
                                   {"metric": HOSTILE[2], "verdict": XSS, "reason": HOSTILE[1]}]}
            text = json.dumps(details) if i != 1 else "{not json " + XSS
            con.execute("insert into gates values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [f"gate-{i}-{decoder}", runs[-1], runs[0], "run", "0" * 64, "{}",
                         details["verdict"], text, now])
        xss_run = ids[XSS][-1]
        con.execute("insert into signoffs values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [1, xss_run, XSS, "reject", HOSTILE[1] + " " + HOSTILE[2], False, now, "", "h1"])
        con.execute("insert into set_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [xss_run, UNKNOWN_METRIC, 1.5, 1.0, 2.0, 4, "ok", "", "1"])
        multi = [r for r in ids.values() if len(r) > 1]
        if multi:
            con.execute("update runs set started_at = started_at - ? where run_id = ?",
                        [timedelta(days=10), multi[0][0]])
