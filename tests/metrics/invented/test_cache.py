"""One analysis per pair, batched, shared by every metric that needs it (the engine's prepare, then compute)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.metrics.base import ImageSample
from qa.metrics.catalog import METRICS
from qa.metrics.invented import analysis, oracle
from qa.metrics.invented.cache import CACHE
from tests.metrics.invented.synth import add_luma, box, texture

NAMES = ("invented_detail", "lost_detail", "invented_detail_baseline", "invented_consistent",
         "invented_contradicting", "distortion", "hf_energy_ratio", "hf_energy_ratio_baseline")


def test_prepare_batches_each_pair_once(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, list[int]] = {"analyse": [], "hf_energy": [], "distortion": []}
    for fn in calls:
        real = getattr(analysis, fn)
        monkeypatch.setattr(analysis, fn, lambda *a, _f=real, _n=fn: (calls[_n].append(a[0].shape[0]), _f(*a))[1])
    base = np.clip(photo * 0.95, 0, 1).astype(np.float32)
    outs = [add_luma(photo, 0.05 * texture(i) * box(10, 50, 20, 60)) for i in range(3)]
    samples = [ImageSample(f"c{i}", o, reference=photo, baseline=base, redecoded=base) for i, o in enumerate(outs)]
    metrics = [METRICS.create(n) for n in NAMES]
    CACHE.clear()
    for m in metrics:
        m.prepare(samples)
    values = {(m.name, s.case_id): m.compute(s).value for m in metrics for s in samples}
    # each pair analysed once, in one batched call per metric that brings new pairs: 3 (output, reference),
    # 3 (output, baseline); (redecoded, baseline) are the same pixels here, so it is not fitted
    # (test_identical_pairs.py); HF energy of 3 outputs + the reference, then the baseline
    assert calls["analyse"] == [3, 3] and calls["distortion"] == [3] and calls["hf_energy"] == [4, 1]
    for i, o in enumerate(outs):  # and the numbers are the oracle's
        assert values[("invented_detail", f"c{i}")] == pytest.approx(oracle.invented_detail(o, photo).invented, abs=1e-4)
        assert values[("distortion", f"c{i}")] == pytest.approx(oracle.distortion(o, photo), rel=1e-4)
    CACHE.clear()


def test_a_new_scope_drops_the_old_results(photo: np.ndarray) -> None:
    m = METRICS.create("invented_detail")
    first = [ImageSample("a", photo, reference=photo)]
    m.prepare(first)
    assert len(CACHE._scoped) == 1
    m.prepare([ImageSample("b", photo[::-1].copy(), reference=photo)])
    assert len(CACHE._scoped) == 1  # the first scope's result is gone: memory stays bounded per group
    CACHE.clear()


def test_equal_images_share_one_analysis(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two seeds of a deterministic decoder: equal pixels in different arrays are analysed once."""
    sizes: list[int] = []
    real = analysis.analyse
    monkeypatch.setattr(analysis, "analyse", lambda o, r: (sizes.append(o.shape[0]), real(o, r))[1])
    out = add_luma(photo, 0.05 * texture(2) * box(10, 50, 20, 60))
    samples = [ImageSample("c", out.copy(), reference=photo, seed=s) for s in (0, 1)]
    m = METRICS.create("invented_detail")
    CACHE.clear()
    m.prepare(samples)
    values = [m.compute(s).value for s in samples]
    assert sizes == [1] and values[0] == values[1]
    CACHE.clear()


def test_a_cpu_analyses_at_most_cpu_batch_pixels_per_call(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU the pairs go in calls of at most ``CPU_BATCH_PIXELS`` per image slot (one 2048 px pair a call),
    with the same numbers as one batched call."""
    from qa.metrics.invented import cache

    big = np.broadcast_to(np.float32(0.5), (2048, 2048, 3))
    groups = cache._by_size([(big, big)] * 3, cache.CPU_BATCH_PIXELS)
    assert [len(g) for g in groups] == [1, 1, 1]
    assert [len(g) for g in cache._by_size([(big, big)] * 3)] == [2, 1]  # other devices: BATCH_PIXELS
    outs = [add_luma(photo, 0.05 * texture(i) * box(10, 50, 20, 60)) for i in range(3)]
    samples = [ImageSample(f"c{i}", o, reference=photo) for i, o in enumerate(outs)]
    m = METRICS.create("invented_detail")
    CACHE.clear()
    m.prepare(samples)
    together = [m.compute(s).value for s in samples]
    sizes: list[int] = []
    real = analysis.analyse
    monkeypatch.setattr(analysis, "analyse", lambda o, r: (sizes.append(o.shape[0]), real(o, r))[1])
    monkeypatch.setattr(cache, "CPU_BATCH_PIXELS", 2 * photo.shape[0] * photo.shape[1])
    CACHE.clear()
    m.prepare(list(samples))
    assert sizes == [2, 1] and [m.compute(s).value for s in samples] == together
    CACHE.clear()
