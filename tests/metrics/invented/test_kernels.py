"""The compiled CPU tier (:mod:`qa.metrics.invented.cpu`) against the torch tier (:mod:`qa.metrics.invented.tensor`)
through the dispatcher (``dispatch.USE_KERNELS`` on and off; the torch tier is what the other tests check against
scipy and the float64 oracle): random inputs, odd sizes, every stride the analysis
uses, and the whole analysis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

from qa.metrics.invented import analysis, dispatch, fine_band, local_fit, model
from qa.metrics.invented.cpu import steps as cpu_steps
from qa.metrics.invented.cpu import threads as cpu_threads
from qa.metrics.invented.oracle import codec as oracle_codec
from qa.metrics.invented.tensor import codec as tensor_codec


@pytest.fixture
def both_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[], object]], tuple]]:
    """Run a function with the kernels and with the banded torch path: (kernel result, torch result)."""

    def run(fn: Callable[[], object]) -> tuple:
        monkeypatch.setattr(dispatch, "USE_KERNELS", True)
        got = fn()
        monkeypatch.setattr(dispatch, "USE_KERNELS", False)
        want = fn()
        monkeypatch.setattr(dispatch, "USE_KERNELS", True)
        return got, want

    yield run


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _close(got: torch.Tensor, want: torch.Tensor, rel: float = 2e-6) -> None:
    assert got.shape == want.shape
    assert torch.isfinite(got).all()
    err = float((got.double() - want.double()).abs().max())
    assert err <= rel * max(float(want.abs().max()), 1e-30), err


def test_the_kernels_are_on_for_float32_cpu_tensors_only() -> None:
    assert dispatch.kernels_take(torch.zeros(2, 2))
    assert not dispatch.kernels_take(torch.zeros(2, 2, dtype=torch.float64))
    assert not dispatch.kernels_take(torch.zeros(2, 2, requires_grad=True))


@pytest.mark.parametrize("sigma,stride,extra", [(0.8, 1, 0), (2.0, 1, 0), (6.4, 1, 0), (4.0, 2, 6), (1.6, 2, 3)])
@pytest.mark.parametrize("shape", [(2, 37, 53), (1, 8, 90)])
def test_separable_passes(both_paths, sigma: float, stride: int, extra: int, shape: tuple[int, ...]) -> None:
    x = _rand(*shape)
    _close(*both_paths(lambda: dispatch.blur_h(x, sigma, stride, extra)))
    _close(*both_paths(lambda: dispatch.blur_w(x, sigma, stride, extra)))
    if stride == 1:
        _close(*both_paths(lambda: dispatch.blur2d(x, sigma)))


@pytest.mark.parametrize("h,w", [(61, 47), (16, 33)])
def test_window_products(both_paths, h: int, w: int) -> None:
    feats = list(_rand(5, 2, h, w, seed=1))
    _close(*both_paths(lambda: dispatch.window_products(feats, local_fit.PAIRS, model.WINDOW_SIGMA, 2, local_fit.EXTRA)))
    _close(*both_paths(lambda: dispatch.window_products(feats[:1], [(0, 0)], model.WINDOW_SIGMA, 2, local_fit.EXTRA)))


@pytest.mark.parametrize("n", [45, 46])
def test_interpolation_back(both_paths, n: int) -> None:
    m = -(-n // 2) + 2 * local_fit.EXTRA + 1
    c = _rand(3, m, m + 2, seed=2)
    _close(*both_paths(lambda: dispatch.upsample_h(c, n, 2, model.WINDOW_SIGMA, local_fit.EXTRA)))
    c = _rand(3, 7, m, seed=3)
    _close(*both_paths(lambda: dispatch.upsample_w(c, n, 2, model.WINDOW_SIGMA, local_fit.EXTRA)))


def _band_pair(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference band and an output that is partly explained by it (gain, shift), partly not."""
    ref = dispatch.blur2d(_rand(1, h, w, seed=4), 1.6) - dispatch.blur2d(_rand(1, h, w, seed=4), 3.2)
    other = dispatch.blur2d(_rand(1, h, w, seed=5), 1.6)
    out = 0.7 * torch.roll(ref, 1, dims=2) + 0.2 * other
    return out, ref


def test_local_fit_and_residual(both_paths) -> None:
    out, ref = _band_pair(57, 64)
    feats = local_fit.features(ref)
    got, want = both_paths(lambda: local_fit.local_lsq(out, feats))
    _close(got.explained, want.explained, 1e-4)
    for c_got, c_want in zip(got.coef, want.coef, strict=True):
        _close(c_got, c_want, 1e-4)
    coef = want.coef
    _close(*both_paths(lambda: local_fit.residual(out, feats, coef)))


def test_placed_excess(both_paths) -> None:
    h, w = 50, 43
    m_h, m_w = -(-h // 2) + 2 * local_fit.EXTRA + 1, -(-w // 2) + 2 * local_fit.EXTRA + 1
    excess = _rand(2, m_h, m_w, seed=6).abs() * 1e-3
    wide = _rand(2, m_h, m_w, seed=7).abs()
    wide[:, 5:9] = 0.0  # where the window holds no residual energy, nothing is placed
    r = _rand(2, h, w, seed=8)
    floor = torch.tensor([2e-4, 5e-4], dtype=torch.float64)
    into = _rand(2, h, w, seed=9).abs()
    got, want = both_paths(lambda: local_fit.place_excess(excess, floor, local_fit.near_energy(r.clone()), wide, None))
    _close(got, want, 1e-5)
    assert float(got.min()) >= 0.0
    got, want = both_paths(lambda: local_fit.place_excess(excess, floor, local_fit.near_energy(r.clone()), wide, into.clone()))
    _close(got, want, 1e-5)
    assert dispatch.kernels_take(excess, r, wide)


def test_whole_analysis(both_paths, photo: np.ndarray) -> None:
    """Same analysis either way on a photo and a degraded copy (blur, noise, a planted texture)."""
    ref = torch.from_numpy(photo).permute(2, 0, 1)[None].contiguous()
    out = dispatch.blur2d(ref[0], 0.7)[None] + 0.01 * _rand(1, 3, *ref.shape[-2:], seed=10)
    out[..., 20:40, 30:50] += 0.05 * torch.sin(torch.arange(20.0) * 2.1)[None, None, :, None]
    out = out.clamp(0, 1)
    got, want = both_paths(lambda: analysis.analyse(out, ref))
    assert abs(float(got.invented[0]) - float(want.invented[0])) < 1e-5
    assert abs(float(got.lost[0]) - float(want.lost[0])) < 1e-5
    _close(got.invented_energy, want.invented_energy, 1e-4)
    assert float(got.invented[0]) > 0.0
    fo, fr = out.mean(1), ref.mean(1)
    got_fine, want_fine = both_paths(lambda: fine_band.fine_invented(fo - dispatch.blur2d(fo, 0.8),
                                                                     fr - dispatch.blur2d(fr, 0.8)))
    for g, w in zip(got_fine, want_fine, strict=True):
        _close(g, w, 1e-4)
    assert abs(float(got.peak[0]) - float(want.peak[0])) < 1e-4 * float(want.peak[0])
    assert float(got.peak[0]) > 0.0 and torch.equal(got.peak_at, want.peak_at)


def test_the_share_alone_is_the_whole_analysis_share_bit_for_bit(both_paths, photo: np.ndarray) -> None:
    """``readings=False`` (a pair whose consumers read the share only) gives the same bits as the whole analysis
    for every share field, on each tier, and no reading: peak, region and spectral NaN, peak_at -1 (never 0)."""
    ref = torch.from_numpy(photo).permute(2, 0, 1)[None].contiguous()
    out = dispatch.blur2d(ref[0], 0.7)[None] + 0.01 * _rand(1, 3, *ref.shape[-2:], seed=11)
    out[..., 20:40, 30:50] += 0.05 * torch.sin(torch.arange(20.0) * 2.1)[None, None, :, None]
    out = out.clamp(0, 1)
    outs, refs = torch.cat([out, ref.flip(-1)]), torch.cat([ref, ref])  # a batch of two pairs
    for whole, share in both_paths(lambda: (analysis.analyse(outs, refs), analysis.analyse(outs, refs, readings=False))):
        for field in ("invented_energy", "invented", "lost", "out_energy", "ref_energy", "noise_floor",
                      "fine_invented", "change"):
            assert torch.equal(getattr(share, field), getattr(whole, field)), field
        assert float(whole.invented[0]) > 0.0 and bool(torch.isfinite(whole.peak).all())
        for field in ("peak", "region", "spectral"):
            assert bool(torch.isnan(getattr(share, field)).all()), field
        assert bool((share.peak_at == -1).all())
        got = share.result(0)
        assert np.array_equal(got.map, whole.result(0).map) and np.isnan(got.peak) and got.peak_at == (-1, -1)


@pytest.mark.parametrize("shape", [(2, 9, 7), (1, 2, 2), (1, 3, 40)])
def test_features(both_paths, shape: tuple[int, ...]) -> None:
    """numpy's gradient and scipy's reflect Laplacian, in one pass."""
    from scipy import ndimage

    b = _rand(*shape, seed=11)
    got, want = both_paths(lambda: local_fit.features(b))
    for g, w in zip(got, want, strict=True):
        _close(g, w)
    x = b.double().numpy()
    gy, gx = np.gradient(x, axis=(1, 2))
    lap = np.stack([ndimage.laplace(p, mode="reflect") for p in x])
    for g, w in zip(got[1:], (gx, gy, lap), strict=True):
        assert np.abs(g.double().numpy() - w).max() < 1e-5


def test_codec_cap() -> None:
    """Whole blocks scaled, partial blocks at the right and bottom kept, as the torch path's block_scale."""
    y_ref = _rand(2, 21, 30, seed=12).abs() * 0.1
    y_out = y_ref + 0.02 * _rand(2, 21, 30, seed=13)
    y_out[0, :8, :8] = y_ref[0, :8, :8]  # a block the codec explains fully: its invented energy is capped to 0
    inv = _rand(2, 21, 30, seed=14).abs() * 1e-3
    fine = _rand(2, 21, 30, seed=15).abs() * 1e-3
    scale = tensor_codec.block_scale(inv + fine, tensor_codec.codec_excess(y_out, y_ref))
    want_fine = fine * scale
    want_inv = inv * scale + want_fine
    got_inv, got_fine = inv.clone(), fine.clone()
    cpu_steps.codec_caps(y_out, y_ref, [got_inv], got_fine, model.CODEC_BLOCK, model.CODEC_SLACK, model.CODEC_FACTOR)
    _close(got_fine, want_fine, 1e-5)
    _close(got_inv, want_inv, 1e-5)
    assert float(got_inv[0, :8, :8].abs().max()) == 0.0
    assert torch.equal(got_inv[:, 16:, :], (inv + fine)[:, 16:, :])


@pytest.mark.parametrize("kernels", [True, False])
def test_codec_caps_cap_each_field_with_the_unscaled_fine_band(kernels: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pair's codec excess computed once serves every field, each capped as the oracle caps it: the share's
    total ``field + fine`` and the region score's ``local + fine`` each with the unscaled finest band (a field
    capped after ``fine`` was already scaled by another's cap read low wherever both caps bind in a block), and
    ``fine`` left scaled by the first field's cap only (its share of the share's total)."""
    monkeypatch.setattr(dispatch, "USE_KERNELS", kernels)
    y_ref = _rand(2, 21, 30, seed=12).abs() * 0.1
    y_out = y_ref + 0.02 * _rand(2, 21, 30, seed=13)
    fields = [_rand(2, 21, 30, seed=s).abs() * 1e-3 for s in (14, 16)]
    fine = _rand(2, 21, 30, seed=15).abs() * 1e-3
    args = (model.CODEC_BLOCK, model.CODEC_SLACK, model.CODEC_FACTOR)
    got_fine = fine.clone()
    got = dispatch.codec_caps(y_out, y_ref, [f.clone() for f in fields], got_fine, *args)
    for i in range(2):
        excess = oracle_codec.codec_excess(y_out[i].double().numpy(), y_ref[i].double().numpy())
        want = [oracle_codec.codec_cap((f[i] + fine[i]).double().numpy(), excess) for f in fields]
        for g, w in zip(got, want, strict=True):
            _close(g[i], torch.from_numpy(w), 1e-6)
        share = want[0] / (fields[0][i] + fine[i]).double().numpy()
        _close(got_fine[i], torch.from_numpy(fine[i].double().numpy() * share), 1e-6)
    assert not torch.equal(got[0], fields[0] + fine)  # the cap binds somewhere
    assert not torch.equal(got_fine, fine)


def test_block_means_and_percentile() -> None:
    a, b = _rand(2, 12, 20, seed=16), _rand(2, 12, 20, seed=17)
    got = cpu_steps.block_means(a, b, 4, 2)
    want = torch.nn.functional.avg_pool2d(torch.stack([a, a * b]), (4, 2))
    _close(got, want, 1e-6)
    x = _rand(3, 1001, seed=18)
    x[1, :600] = 0.5  # ties at the order statistics
    for q in (0.0, 25.0, 50.0, 99.9, 100.0):
        want = np.percentile(x.double().numpy(), q, axis=1)
        assert np.allclose(cpu_steps.percentile(x, q).double().numpy(), want, atol=1e-6)


@pytest.mark.parametrize("shape,fh,fw", [((5, 7), 4, 4), ((6, 3), 2, 4), ((4, 9), 1, 2)])
def test_surround_level(shape: tuple[int, int], fh: int, fw: int) -> None:
    """a + b ref with a, b bicubic-interpolated (the torch path's ``bicubic``, itself checked against torch)."""
    ab = _rand(2, 2, *shape, seed=19)
    ref = _rand(2, shape[0] * fh, shape[1] * fw, seed=20)
    a, b = dispatch.bicubic(ab.flatten(0, 1), fh, fw).chunk(2)
    rows = dispatch.bicubic(ab.flatten(0, 1), fh, 1).unflatten(0, (2, 2))  # along H first, as the method does
    _close(cpu_steps.surround_level(rows, fw, ref), a + b * ref, 1e-6)


def test_torch_serial_keeps_the_kernels_threads_and_restores_torch() -> None:
    before = torch.get_num_threads()
    with cpu_threads.torch_serial():
        assert torch.get_num_threads() == 1
        assert cpu_threads._threads[-1] == before  # the kernels keep the count torch had
        with cpu_threads.torch_serial():  # nested: still the outer count
            assert cpu_threads._threads[-1] == before
    assert torch.get_num_threads() == before
    assert not cpu_threads._threads


def test_plane_sums() -> None:
    x = _rand(3, 17, 29, seed=21)
    want = x.double().sum(dim=(1, 2))
    assert torch.allclose(cpu_steps.plane_sums(x), want, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("shape", [(2, 37, 53), (1, 1, 9), (1, 9, 1), (1, 3, 2), (3, 20, 20)])
def test_region_map(both_paths, shape: tuple[int, ...]) -> None:
    energy = _rand(*shape, seed=3).square()
    energy[..., : shape[-1] // 3] = 0.0  # a flat region and a step, where the closing's edges matter
    got, want = both_paths(lambda: dispatch.region_map(energy))
    # max and min are exact; the square root may differ by one float32 ulp between the two libraries
    assert torch.allclose(got, want, rtol=2e-7, atol=0.0)


@pytest.mark.parametrize("shape", [(2, 37, 53), (1, 3, 3), (1, 5, 64)])
def test_pointwise_steps(both_paths, shape: tuple[int, ...]) -> None:
    a, b = _rand(*shape, seed=4), _rand(*shape, seed=5)
    _close(*both_paths(lambda: dispatch.sub(a, b)))
    got_band, want_band = both_paths(lambda: dispatch.band(a, b))
    _close(got_band[0], want_band[0])
    assert torch.allclose(got_band[1], want_band[1], rtol=1e-6)
    _close(*both_paths(lambda: dispatch.squared(a)))
    _close(*both_paths(lambda: dispatch.squared(a.clone(), in_place=True)))
    got, want = both_paths(lambda: dispatch.shift_pairs(a, model.PREDICT_OFFSETS))
    for g, w in zip(got, want, strict=True):
        _close(g, w)
    rgb = torch.from_numpy(np.random.default_rng(6).random((2, *shape[1:], 3), dtype=np.float32)).permute(0, 3, 1, 2)

    def luma() -> torch.Tensor:
        out = torch.empty((2, *shape[1:]))
        dispatch.luma_into(rgb, out)
        return out

    _close(*both_paths(luma))


def test_stacked_views_are_not_copied() -> None:
    whole = _rand(4, 2, 5, 6)
    got = cpu_steps.stacked(list(whole))
    assert torch.equal(got, whole) and got.data_ptr() == whole.data_ptr()
    parts = [_rand(2, 5, 6, seed=i) for i in range(4)]  # separate tensors: stacked by copy
    assert torch.equal(cpu_steps.stacked(parts), torch.stack(parts))
    assert torch.equal(cpu_steps.stacked(list(whole[:, :, :, :3])), whole[:, :, :, :3])  # not contiguous: a copy
