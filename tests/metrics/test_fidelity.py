"""PSNR / SSIM / MS-SSIM against published values (TID2013, piq assets) and independent implementations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.imageio import load_image
from qa.metrics.base import ImageSample, MetricInputError, NotApplicable
from qa.metrics.fidelity import MSSSIM, PSNR, SSIM, SSIMSkimage
from qa.metrics.functional import fidelity as F

EXTERNAL = Path("/work/shared/external")
if not EXTERNAL.exists():
    EXTERNAL = Path(__file__).resolve().parents[3] / "shared" / "external"
TID = EXTERNAL / "tid2013-calibration"
PIQ = EXTERNAL / "piq-assets"
needs_external = pytest.mark.skipif(not TID.exists(), reason=f"external reference data absent ({TID})")

# Official values (IQA-PyTorch ResultsCalibra/results_official.csv), order I03, I04, I06, I08, I19.
TID_NAMES = ["I03", "I04", "I06", "I08", "I19"]
TID_PSNR = [21.11, 20.99, 27.01, 23.30, 21.62]
TID_SSIM = [0.6993, 0.9978, 0.9989, 0.9669, 0.6519]


def _tid(name: str) -> tuple[np.ndarray, np.ndarray]:
    return load_image(TID / "dist" / f"{name}.bmp").pixels, load_image(TID / "ref" / f"{name}.bmp").pixels


@needs_external
@pytest.mark.parametrize("idx", range(5), ids=TID_NAMES)
def test_tid2013_psnr_ssim_match_official(idx: int) -> None:
    dist, ref = _tid(TID_NAMES[idx])
    sample = ImageSample("c", dist, ref)
    assert PSNR().compute(sample).value == pytest.approx(TID_PSNR[idx], abs=1e-2)
    assert SSIM().compute(sample).value == pytest.approx(TID_SSIM[idx], abs=1e-2)


@needs_external
def test_piq_assets_ssim() -> None:
    # MATLAB ssim.m (2009) downsamples by round(min(H, W) / 256) first
    g = load_image(PIQ / "goldhill.gif").pixels
    gj = load_image(PIQ / "goldhill_jpeg.gif").pixels
    assert F.ssim(gj, g, downsample=True) == pytest.approx(0.8202, abs=1e-3)
    a = load_image(PIQ / "I01.BMP").pixels
    b = load_image(PIQ / "i01_01_5.bmp").pixels
    assert F.ssim(b, a, downsample=True, color="rgb") == pytest.approx(0.7842, abs=1e-2)


def test_skimage_camera_case() -> None:
    from skimage import data
    from skimage.metrics import structural_similarity

    cam = data.camera()
    rng = np.random.RandomState(5)  # the same stream as np.random.seed(5)
    noisy = np.clip(cam + 20 * rng.randn(*cam.shape), 0, 255).astype(np.uint8)
    ours = F.ssim_skimage(cam.astype(np.float64), noisy.astype(np.float64), data_range=255)
    assert ours == pytest.approx(0.3674518327910367, abs=1e-6)
    assert ours == pytest.approx(structural_similarity(cam, noisy, data_range=255), abs=1e-9)


def test_ssim_skimage_rgb_matches_skimage() -> None:
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    ref = rng.random((40, 52, 3)).astype(np.float32)
    out = np.clip(ref + 0.1 * rng.standard_normal(ref.shape), 0, 1).astype(np.float32)
    expected = structural_similarity(out, ref, data_range=1.0, channel_axis=-1)
    assert SSIMSkimage().compute(ImageSample("c", out, ref)).value == pytest.approx(expected, abs=1e-6)


def test_psnr_matches_skimage_and_identical_is_inf() -> None:
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(1)
    ref = rng.random((32, 32, 3)).astype(np.float32)
    out = np.clip(ref + 0.03 * rng.standard_normal(ref.shape), 0, 1).astype(np.float32)
    expected = peak_signal_noise_ratio(ref.astype(np.float64), out.astype(np.float64), data_range=1.0)
    assert F.psnr(out, ref) == pytest.approx(expected, rel=1e-7)
    assert F.psnr(ref, ref) == float("inf")


def _ms_ssim_torch_reference(out: np.ndarray, ref: np.ndarray) -> float:
    """Independent MS-SSIM (Wang 2003) with torch conv2d 'valid', per channel, relu-clipped, channel mean."""
    import torch
    import torch.nn.functional as tf

    x = torch.from_numpy(out.astype(np.float64)).permute(2, 0, 1)[:, None]
    y = torch.from_numpy(ref.astype(np.float64)).permute(2, 0, 1)[:, None]
    d = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(d**2) / (2 * 1.5**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :])[None, None]
    c1, c2 = 0.01**2, 0.03**2
    betas = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333], dtype=torch.float64)
    vals = []
    for lvl in range(5):
        mx, my = tf.conv2d(x, w), tf.conv2d(y, w)
        sxx = tf.conv2d(x * x, w) - mx**2
        syy = tf.conv2d(y * y, w) - my**2
        sxy = tf.conv2d(x * y, w) - mx * my
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        s = cs * (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        vals.append(torch.relu((s if lvl == 4 else cs).mean(dim=(1, 2, 3))))
        x, y = tf.avg_pool2d(x, 2), tf.avg_pool2d(y, 2)
    per_channel = torch.prod(torch.stack(vals) ** betas[:, None], dim=0)
    return float(per_channel.mean())


def test_ms_ssim_matches_independent_and_torchmetrics() -> None:
    torch = pytest.importorskip("torch")
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_ms_ssim

    rng = np.random.default_rng(2)
    ref = rng.random((192, 200, 3)).astype(np.float32)
    ref = (ref + np.roll(ref, 1, 0) + np.roll(ref, 1, 1)) / 3  # some structure across scales
    out = np.clip(ref + 0.05 * rng.standard_normal(ref.shape), 0, 1).astype(np.float32)
    ours = F.ms_ssim(out, ref)  # the float64 reference implementation
    assert ours == pytest.approx(_ms_ssim_torch_reference(out, ref), abs=1e-9)
    # the metric's torch float32 path agrees with it (float32 filtering, float64 means)
    fast = MSSSIM().compute(ImageSample("c", out, ref)).value
    assert fast == pytest.approx(ours, abs=2e-6)
    # torchmetrics averages its last-scale SSIM over the reflect-padded full image (not the valid region),
    # so it differs slightly near the borders; agree to 1e-3.
    t = lambda a: torch.from_numpy(a.astype(np.float64)).permute(2, 0, 1)[None]  # noqa: E731
    assert ours == pytest.approx(float(tm_ms_ssim(t(out), t(ref), data_range=1.0, normalize="relu")), abs=1e-3)
    assert fast == pytest.approx(float(tm_ms_ssim(t(out), t(ref), data_range=1.0, normalize="relu")), abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ms_ssim_torch_path_matches_float64_on_photos(seed: int) -> None:
    """The torch float32 path on real photo crops with decoder-like errors (blur, noise, JPEG-like rounding)."""
    from scipy import ndimage
    from skimage import data

    photo = [data.astronaut(), data.coffee(), data.chelsea()][seed][:300, :300].astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    degraded = ndimage.gaussian_filter(photo, (1.0, 1.0, 0)) + 0.02 * rng.standard_normal(photo.shape)
    out = np.clip(np.round(degraded * 64) / 64, 0, 1).astype(np.float32)
    want = F.ms_ssim(out, photo)
    got = MSSSIM().compute(ImageSample("c", out, photo)).value
    assert 0.5 < want < 1.0
    assert got == pytest.approx(want, abs=2e-6)


def test_ssim_identical_and_constant_images() -> None:
    img = np.full((24, 24, 3), 0.5, np.float32)
    assert F.ssim(img, img) == pytest.approx(1.0)
    assert F.ssim_skimage(img, img) == pytest.approx(1.0)
    other = np.full((24, 24, 3), 0.25, np.float32)
    v = F.ssim(other, img)
    assert np.isfinite(v) and v < 1.0
    assert np.isfinite(F.psnr(other, img))


def test_ssim_map_at_output_resolution() -> None:
    rng = np.random.default_rng(3)
    ref = rng.random((30, 40, 3)).astype(np.float32)
    out = ref.copy()
    out[5:15, 5:15] = 0.0
    mv = SSIM().compute(ImageSample("c", out, ref))
    assert mv.map is not None and mv.map.shape == (30, 40)
    assert mv.map[10, 10] > mv.map[25, 35]


def test_bad_inputs_raise_clear_errors() -> None:
    ref = np.zeros((20, 20, 3), np.float32)
    bad = ref.copy()
    bad[3, 3, 1] = np.nan
    with pytest.raises(MetricInputError, match="NaN"):
        PSNR().compute(ImageSample("c", bad, ref))
    with pytest.raises(MetricInputError, match="differ in size"):
        SSIM().compute(ImageSample("c", np.zeros((21, 20, 3), np.float32), ref))
    with pytest.raises(NotApplicable, match="reference"):
        PSNR().compute(ImageSample("c", ref, None))
    with pytest.raises(NotApplicable, match="176"):
        MSSSIM().compute(ImageSample("c", ref, ref))


@pytest.mark.parametrize("side", [161, 168, 175])
def test_ms_ssim_refuses_sides_whose_coarsest_scale_is_narrower_than_the_window(side: int) -> None:
    """floor(side / 16) < 11 at the fifth scale: the window does not fit (these sides gave NaN)."""
    rng = np.random.default_rng(side)
    ref = rng.random((side, 200, 3)).astype(np.float32)
    out = np.clip(ref + 0.05, 0, 1).astype(np.float32)
    with pytest.raises(NotApplicable, match="176"):
        MSSSIM().compute(ImageSample("c", out, ref))
    with pytest.raises(MetricInputError, match="176"):
        F.ms_ssim(out, ref)
    big = rng.random((176, 200, 3)).astype(np.float32)
    assert np.isfinite(MSSSIM().compute(ImageSample("c", np.clip(big + 0.05, 0, 1), big)).value)


def test_parallel_plane_filter_is_bit_identical_to_one_call() -> None:
    """SSIM's large planes are filtered as (plane, band of rows) tasks in threads: every output row must be the
    number one call computes (results do not depend on the thread count)."""
    from qa.metrics.functional.fidelity import _filter_valid, _filter_valid_parallel, gaussian_kernel1d

    rng = np.random.default_rng(5)
    planes = tuple(rng.random((301, 263)) * 255 for _ in range(5))
    k = gaussian_kernel1d(11, 1.5)
    got = _filter_valid_parallel(planes, k, workers=2)
    for plane, g in zip(planes, got, strict=True):
        assert np.array_equal(g, _filter_valid(plane, k))
