"""The torch analysis (:mod:`qa.metrics.invented.analysis`) against the float64 numpy oracle
(:mod:`qa.metrics.invented.oracle`) and scipy itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from qa.metrics.invented import analysis, dispatch, local_fit, oracle
from qa.metrics.invented.tensor import filters as tensor_filters
from qa.metrics.invented.tensor import pointwise as tensor_pointwise
from tests.metrics.invented.synth import add_luma, box, texture


def _t(*imgs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(imgs).astype(np.float32)).permute(0, 3, 1, 2)


@pytest.mark.parametrize("shape", [(37, 53), (10, 12), (64, 64)])
@pytest.mark.parametrize("sigma", [0.8, 1.0, 3.2, 6.4])
def test_blur2d_is_scipys_gaussian(shape: tuple[int, int], sigma: float) -> None:
    """Reflect mode, truncate 4, any size (the 10x12 image is smaller than the 6.4 kernel's radius)."""
    x = np.random.default_rng(0).random((2, *shape))
    want = np.stack([ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=4.0) for a in x])
    for blur in (tensor_filters.blur2d, dispatch.blur2d):
        got = blur(torch.from_numpy(x).float(), sigma).double().numpy()
        assert np.abs(got - want).max() < 2e-6


@pytest.mark.parametrize("shape", [(70, 91), (33, 20)])
def test_coarse_windows_sample_scipys_window_means(shape: tuple[int, int]) -> None:
    """The window means of products on the coarse grid are scipy's full-resolution filter at those pixels."""
    rng = np.random.default_rng(1)
    f = rng.standard_normal((3, 2, *shape))
    pairs = [(0, 0), (0, 1), (2, 1)]
    got = local_fit.coarse_windows(torch.from_numpy(f).float(), pairs, 4.0).double().numpy()  # (P, N, h', w')
    s, e = local_fit.WINDOW_STRIDE, local_fit.EXTRA
    h_in, w_in = -(-shape[0] // s), -(-shape[1] // s)  # the coarse samples inside the image
    for p, (i, j) in enumerate(pairs):
        for n in range(2):
            want = ndimage.gaussian_filter(f[i, n] * f[j, n], 4.0, mode="reflect", truncate=4.0)[::s, ::s]
            assert np.abs(got[p, n, e : e + h_in, e : e + w_in] - want).max() < 1e-5 * np.abs(want).max()


def test_to_full_interpolates_a_window_field() -> None:
    """A sigma-4 window field sampled on the coarse grid comes back to full resolution within 2e-5 of its
    maximum even for white noise (the worst case: no low-pass of its own), and the coarse weighted sum is the sum
    of the interpolated field."""
    x = np.random.default_rng(2).random((1, 1, 80, 67))
    want = ndimage.gaussian_filter(x[0, 0], 4.0, mode="reflect", truncate=4.0)
    feats = torch.stack([torch.from_numpy(x[0]).float(), torch.ones(1, 80, 67)])  # x * 1 = x
    coarse = local_fit.coarse_windows(feats, [(0, 1)], 4.0)[0]
    full = local_fit.to_full(coarse, 80, 67, 4.0)[0].double().numpy()
    assert np.abs(full - want).max() < 2e-5 * want.max()
    total = float(local_fit.full_sum(coarse, 80, 67, 4.0)[0])
    assert total == pytest.approx(float(full.sum()), rel=1e-6)


def test_gradient_laplace_percentile_match_numpy() -> None:
    y = np.random.default_rng(2).random((2, 17, 23))
    gy, gx = tensor_pointwise.gradient(torch.from_numpy(y))
    for i in range(2):
        ny, nx = np.gradient(y[i])
        assert np.allclose(gy[i].numpy(), ny) and np.allclose(gx[i].numpy(), nx)
        assert np.allclose(tensor_pointwise.laplace(torch.from_numpy(y))[i].numpy(), ndimage.laplace(y[i], mode="reflect"))
    flat = torch.from_numpy(y.reshape(2, -1))
    for q in (0.0, 25.0, 50.0, 99.0):
        assert np.allclose(tensor_pointwise.percentile(flat, q).numpy(), np.percentile(y.reshape(2, -1), q, axis=1))


def _cases(photo: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "identical": photo,
        "blur": ndimage.gaussian_filter(photo, (1.5, 1.5, 0)).astype(np.float32),
        "noise": np.clip(photo + 0.02 * rng.normal(size=photo.shape), 0, 1).astype(np.float32),
        "tone": np.clip(photo * 0.9 + 0.05, 0, 1).astype(np.float32),
        "texture": add_luma(photo, 0.05 * texture(0) * box(20, 60, 30, 70)),
        "checker": add_luma(photo, 0.04 * (np.indices(photo.shape[:2]).sum(0) % 2 - 0.5) * box(10, 50, 40, 90)),
    }


def test_analysis_matches_the_oracle_batched(photo: np.ndarray) -> None:
    """Every field of the result, for a batch of six kinds at once (the batch changes no image's numbers)."""
    cases = _cases(photo)
    batch = analysis.analyse(_t(*cases.values()), _t(*[photo] * len(cases)))
    for i, (kind, out) in enumerate(cases.items()):
        want, got = oracle.invented_detail(out, photo), batch.result(i)
        assert abs(got.invented - want.invented) < 2e-4, kind
        assert abs(got.lost - want.lost) < 1e-3, kind
        # per-pixel invented energy (the map squared): within 5% of its maximum; the map's side of the IoU
        # threshold (benchmarks.planted.evaluate) agrees on 99.5% of the pixels
        peak = max(float(want.invented_energy.max()), 1e-12)
        assert np.abs(got.invented_energy - want.invented_energy).max() < 0.05 * peak, kind
        assert ((got.map > 0.0075) != (want.map > 0.0075)).mean() < 0.005, kind
        # the floor's percentile is taken over the coarse grid's samples (576 here), not all 9216 pixels
        assert np.allclose(got.noise_floor, want.noise_floor, rtol=0.25, atol=1e-9), kind
        assert got.peak == pytest.approx(want.peak, rel=0.02, abs=1e-4), kind
        assert got.out_energy == pytest.approx(want.out_energy, rel=1e-4), kind
        assert got.ref_energy == pytest.approx(want.ref_energy, rel=1e-4), kind
    assert batch.result(list(cases).index("texture")).invented > 0.002  # the comparison is not between zeros
    assert batch.result(0).invented == 0.0  # identical images: nothing invented


@pytest.mark.parametrize("quality", [5, 15])
def test_the_region_score_of_a_low_quality_jpeg_matches_the_oracle(quality: int) -> None:
    """Low-quality JPEG 4:2:0, where the codec cap binds in most blocks for both the share's total and the
    region score's: the product caps each with the unscaled finest band, as the oracle does (capping the
    region score's field after the share's cap had scaled the finest band read rocket at q15 0.020 against
    the oracle's 0.040)."""
    import io

    import skimage.data
    from PIL import Image

    ref = skimage.data.rocket()[:256, :256]
    buf = io.BytesIO()
    Image.fromarray(ref).save(buf, "JPEG", quality=quality, subsampling=2)
    r = (ref / 255.0).astype(np.float32)
    o = (np.asarray(Image.open(buf)) / 255.0).astype(np.float32)
    want, got = oracle.invented_detail(o, r), analysis.analyse(_t(o), _t(r)).result(0)
    assert want.region > 0.03  # the cap binds and the comparison is not between zeros
    assert got.region == pytest.approx(want.region, rel=0.01)
    assert got.fine_invented == pytest.approx(want.fine_invented, rel=0.01, abs=1e-6)


def test_distortion_hf_seed_std_match_the_oracle(photo: np.ndarray) -> None:
    cases = list(_cases(photo).values())
    refs = [photo] * len(cases)
    dist = analysis.distortion(_t(*cases), _t(*refs)).numpy()
    assert np.allclose(dist, [oracle.distortion(o, photo) for o in cases], rtol=1e-4, atol=1e-7)
    assert np.allclose(analysis.hf_energy(_t(*cases)).numpy(), [oracle.hf_energy(o) for o in cases], rtol=1e-4)
    std = analysis.seed_std(_t(*cases)).numpy()
    assert np.abs(std - oracle.seed_std_map(cases)).max() < 1e-6
    assert float(analysis.seed_std(_t(photo, photo)).abs().max()) == 0.0


@pytest.mark.slow
def test_planted_tune_split_matches_the_oracle() -> None:
    """One in four cases of the planted benchmark's tune split (all kinds): invented and lost within 1e-3 of
    the oracle (benchmarks/invented_port_check.py checks every image of both splits, with AUROC and IoU)."""
    from benchmarks.planted.cases import build

    for c in build("tune")[::4]:
        want = oracle.invented_detail(c.output, c.reference)
        got = analysis.analyse(_t(c.output), _t(c.reference)).result(0)
        assert abs(got.invented - want.invented) < 1e-3, c.name
        assert abs(got.lost - want.lost) < 1e-3, c.name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (torch.cuda.is_available() is False)")
def test_cuda_matches_cpu(photo: np.ndarray) -> None:
    """The same analysis on the GPU: the metric classes with device="cuda" give the CPU's numbers."""
    from qa.metrics.base import ImageSample
    from qa.metrics.invented.metrics import InventedDetail

    cases = _cases(photo)
    out, ref = _t(*cases.values()), _t(*[photo] * len(cases))
    cpu, gpu = analysis.analyse(out, ref), analysis.analyse(out.cuda(), ref.cuda())
    assert gpu.invented_energy.is_cuda
    assert torch.allclose(cpu.invented, gpu.invented.cpu(), atol=1e-5)
    assert torch.allclose(cpu.lost, gpu.lost.cpu(), atol=1e-5)
    assert torch.allclose(analysis.distortion(out, ref), analysis.distortion(out.cuda(), ref.cuda()).cpu(), rtol=1e-4)
    assert torch.allclose(analysis.hf_energy(out), analysis.hf_energy(out.cuda()).cpu(), rtol=1e-4)
    sample = ImageSample("c", cases["texture"], reference=photo)
    value = InventedDetail(device="cuda").compute(sample).value
    assert value == pytest.approx(oracle.invented_detail(cases["texture"], photo).invented, abs=2e-4)


def test_a_pairs_analysis_has_the_same_bits_alone_and_in_a_batch() -> None:
    """What else is batched with a pair (the engine groups pairs by size, and a share-only pair goes in a call of
    its own) never changes its numbers: every field of a pair analysed alone equals its row of a batch of four,
    bit for bit (lost detail's float64 sum was a batched contraction whose rounding depended on the batch; a
    default tile's size, 256 px, showed it)."""
    import skimage.data

    photo = (skimage.data.astronaut()[:256, :256] / 255.0).astype(np.float32)
    rng = np.random.default_rng(4)
    outs = [np.clip(photo + 0.02 * rng.standard_normal(photo.shape), 0, 1).astype(np.float32) for _ in range(3)]
    planted = photo.copy()
    planted[40:100, 60:140] += 0.05 * np.sin(np.arange(80) * 2.1)[None, :, None].astype(np.float32)
    outs.insert(1, np.clip(planted, 0, 1))
    alone = analysis.analyse(_t(outs[1]), _t(photo))
    batch = analysis.analyse(_t(*outs), _t(*[photo] * 4))
    for field in ("invented_energy", "invented", "lost", "out_energy", "ref_energy", "noise_floor", "fine_invented",
                  "peak", "peak_at", "region", "spectral", "change"):
        assert torch.equal(getattr(alone, field)[0], getattr(batch, field)[1]), field
    assert float(alone.lost[0]) > 0.0 and float(alone.invented[0]) > 0.0
