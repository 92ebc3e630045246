"""One analysis per pair, batched, shared by every metric that needs it (the engine's prepare, then compute)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qa.metrics.base import ImageSample
from qa.metrics.batching import by_size
from qa.metrics.catalog import METRICS
from qa.metrics.invented import analysis, oracle
from qa.metrics.invented.cache import CACHE, to_batch
from tests.metrics.invented.synth import add_luma, box, texture

NAMES = ("invented_detail", "lost_detail", "invented_detail_baseline", "invented_consistent",
         "invented_contradicting", "distortion", "hf_energy_ratio", "hf_energy_ratio_baseline")


def test_prepare_batches_each_pair_once(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, list[int]] = {"analyse": [], "hf_energy": [], "distortion": []}
    readings: list[bool] = []
    for fn in calls:
        real = getattr(analysis, fn)
        monkeypatch.setattr(analysis, fn, lambda *a, _f=real, _n=fn, **k: (
            calls[_n].append(a[0].shape[0]), _n != "analyse" or readings.append(k.get("readings", True)),
            _f(*a, **k))[2])
    base = np.clip(photo * 0.95, 0, 1).astype(np.float32)
    outs = [add_luma(photo, 0.05 * texture(i) * box(10, 50, 20, 60)) for i in range(3)]
    samples = [ImageSample(f"c{i}", o, reference=photo, baseline=base, redecoded=base) for i, o in enumerate(outs)]
    metrics = [METRICS.create(n) for n in NAMES]
    CACHE.clear()
    for m in metrics:
        m.prepare(samples)
    values = {(m.name, s.case_id): m.compute(s).value for m in metrics for s in samples}
    # each pair analysed once, in one batched call per metric that brings new pairs: 3 (output, reference)
    # whole, 3 (output, baseline) for their share only (invented_detail_baseline reads no region score);
    # (redecoded, baseline) are the same pixels here, so it is not fitted (test_identical_pairs.py); HF energy
    # of 3 outputs + the reference, then the baseline
    assert calls["analyse"] == [3, 3] and readings == [True, False]
    assert calls["distortion"] == [3] and calls["hf_energy"] == [4, 1]
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
    monkeypatch.setattr(analysis, "analyse", lambda o, r, **k: (sizes.append(o.shape[0]), real(o, r, **k))[1])
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
    groups = by_size([(big, big)] * 3, cache.CPU_BATCH_PIXELS)
    assert [len(g) for g in groups] == [1, 1, 1]
    assert [len(g) for g in by_size([(big, big)] * 3)] == [2, 1]  # other devices: BATCH_PIXELS
    outs = [add_luma(photo, 0.05 * texture(i) * box(10, 50, 20, 60)) for i in range(3)]
    samples = [ImageSample(f"c{i}", o, reference=photo) for i, o in enumerate(outs)]
    m = METRICS.create("invented_detail")
    CACHE.clear()
    m.prepare(samples)
    together = [m.compute(s).value for s in samples]
    sizes: list[int] = []
    real = analysis.analyse
    monkeypatch.setattr(analysis, "analyse", lambda o, r, **k: (sizes.append(o.shape[0]), real(o, r, **k))[1])
    monkeypatch.setattr(cache, "CPU_BATCH_PIXELS", 2 * photo.shape[0] * photo.shape[1])
    CACHE.clear()
    m.prepare(list(samples))
    assert sizes == [2, 1] and [m.compute(s).value for s in samples] == together
    CACHE.clear()


def test_a_share_only_pair_is_never_served_as_a_whole_analysis(photo: np.ndarray,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The latent split reads only the share of (redecoded, baseline): that pair is analysed without the region
    score and spectral readings, its metrics are the numbers of the whole analysis, a whole lookup of the same
    pair analyses it whole (readings finite, never the share-only NaN), and a share lookup of a pair analysed
    whole in the scope reuses it."""
    calls: list[bool] = []
    real = analysis.analyse
    monkeypatch.setattr(analysis, "analyse", lambda o, r, **k: (calls.append(k.get("readings", True)), real(o, r, **k))[1])
    out = add_luma(photo, 0.05 * texture(1) * box(10, 50, 20, 60))
    base = np.clip(photo * 0.95, 0, 1).astype(np.float32)
    red = add_luma(base, 0.03 * texture(3) * box(30, 70, 10, 50))
    sample = ImageSample("c", out, reference=photo, baseline=base, redecoded=red)
    metrics = [METRICS.create(n) for n in ("invented_contradicting", "invented_consistent")]
    CACHE.clear()
    scope = [sample]
    for m in metrics:
        m.prepare(scope)
    assert calls == [True, False]  # (output, reference) whole, (redecoded, baseline) its share
    got = {m.name: m.compute(sample).value for m in metrics}
    assert calls == [True, False]  # compute found both
    whole = analysis.analyse(to_batch([red], torch.device("cpu")), to_batch([base], torch.device("cpu"))).result(0)
    res = CACHE.invented(out, photo, "cpu")
    contra = np.minimum(res.invented_energy, whole.invented_energy)
    den = max(res.out_energy, res.ref_energy)
    assert got["invented_contradicting"] == float(contra.sum(dtype=np.float64) / den)
    assert got["invented_consistent"] == float(np.maximum(res.invented_energy - contra, 0).sum(dtype=np.float64) / den)
    share = CACHE.invented_share(red, base, "cpu")
    assert np.isnan(share.peak) and np.array_equal(share.invented_energy, whole.invented_energy)
    calls.clear()
    again = CACHE.invented(red, base, "cpu")  # a whole lookup: analysed whole, not the share-only result
    assert calls == [True] and again.peak == whole.peak and np.isfinite(again.peak)
    calls.clear()
    assert CACHE.invented_share(out, photo, "cpu") is res and calls == []  # the scope's whole analysis
    CACHE.clear()
