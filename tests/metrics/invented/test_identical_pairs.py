"""A pair whose output and reference are the same pixels (a decoder whose baseline is itself: output vs
baseline) is not fitted: its result is built directly and matches the float64 oracle on equal images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from qa.metrics.invented import analysis, oracle
from qa.metrics.invented.cache import CACHE, to_batch


def _photo() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[40:200, 60:252]).astype(np.float32) / 255.0


def test_identical_result_matches_the_oracle_on_equal_images() -> None:
    x = _photo()
    want = oracle.invented_detail(x, x)
    got = analysis.analyse_identical(to_batch([x], torch.device("cpu"))).result(0)
    assert got.invented == want.invented == 0.0
    assert got.fine_invented == want.fine_invented == 0.0
    assert got.lost == pytest.approx(want.lost, abs=1e-5)  # the oracle's ridge leaves about 1e-6
    assert got.out_energy == pytest.approx(want.out_energy, rel=1e-4)
    assert got.ref_energy == pytest.approx(want.ref_energy, rel=1e-4)
    assert got.noise_floor == pytest.approx(want.noise_floor, rel=1e-6)
    assert got.peak == want.peak == 0.0
    assert got.map.shape == want.map.shape and not got.map.any() and not want.map.any()


def test_cache_does_not_fit_an_identical_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _photo()
    y = x.copy()  # a planted texture in a box (noise over the whole image would be excused by the surround)
    y[40:90, 60:120] += 0.05 * np.random.default_rng(0).standard_normal((50, 60, 3)).astype(np.float32)
    y = np.clip(y, 0, 1)
    fitted: list[int] = []
    real = analysis.analyse

    def counting(outputs: torch.Tensor, references: torch.Tensor, readings: bool = True) -> analysis.InventedBatch:
        fitted.append(int(outputs.shape[0]))
        return real(outputs, references, readings)

    monkeypatch.setattr(analysis, "analyse", counting)
    CACHE.clear()
    scope: list[object] = []
    twin = x.copy()  # same pixels, another array (as the engine's baseline of a deterministic decoder)
    CACHE.prefill(scope, [(x, twin), (y, x)], "cpu")
    assert fitted == [1]  # only the pair that differs was fitted
    same = CACHE.invented(x, twin, "cpu")
    assert same.invented == 0.0 and same.lost == 0.0
    assert CACHE.invented(y, x, "cpu").invented > 0.0
    CACHE.clear()
    # outside a scope the same short cut applies
    assert CACHE.invented(x, x.copy(), "cpu").invented == 0.0
    assert fitted == [1]
    CACHE.clear()


def test_identical_pair_reuses_the_band_energies_an_analysis_summed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image analysed against another in the scope (output vs reference) has its three bands' energies
    summed already: its identical pair (output vs baseline, a later prepare) filters nothing, and its energies
    are those the filtering gives."""
    x = _photo()
    y = np.clip(x * 0.9 + 0.05, 0, 1).astype(np.float32)
    filtered = analysis.analyse_identical(to_batch([x], torch.device("cpu"))).result(0)
    CACHE.clear()
    scope: list[object] = []
    CACHE.prefill(scope, [(x, y)], "cpu")  # x's energy: this analysis's out_energy
    blurs: list[float] = []
    real_blur = analysis.dispatch.blur2d

    def counting(t: torch.Tensor, sigma: float) -> torch.Tensor:
        blurs.append(sigma)
        return real_blur(t, sigma)

    monkeypatch.setattr(analysis.dispatch, "blur2d", counting)
    CACHE.prefill(scope, [(x, x.copy())], "cpu")
    assert blurs == []
    got = CACHE.invented(x, x.copy(), "cpu")
    assert got.invented == 0.0 and got.lost == 0.0 and not got.map.any()
    assert got.out_energy == got.ref_energy == pytest.approx(filtered.out_energy, rel=1e-6)
    assert got.noise_floor == filtered.noise_floor
    CACHE.clear()
    # a scope whose analyses never saw the image filters it
    CACHE.prefill([], [(x, x.copy())], "cpu")
    assert blurs != []
    CACHE.clear()
