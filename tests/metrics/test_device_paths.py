"""Every default per-image metric runs on the run's device: each takes ``device`` (the engine passes
``qa run --device``), and on CUDA each gives the CPU's row (status, value within its tolerance, map) on a
sample that every metric applies to. The CUDA test skips here with the reason where torch sees no GPU."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as tf
from scipy import ndimage

from qa.engine.plan import make_metrics
from qa.metrics.base import ImageMetric, ImageSample
from qa.metrics.catalog import METRICS
from qa.metrics.scoring import score_sample

#: how close the CUDA value must be to the CPU's: (absolute, relative); float32 on both, different kernels
TOLERANCE: dict[str, tuple[float, float]] = {
    "psnr": (0.0, 1e-6), "agreement_psnr": (0.0, 1e-6), "seed_alignment": (1e-5, 1e-6),
    "ssim": (2e-6, 0.0), "agreement_ssim": (2e-6, 0.0), "ssim_skimage": (2e-6, 0.0), "ms_ssim": (2e-6, 0.0),
    "lpips_alex": (1e-4, 0.0), "lpips_vgg": (1e-4, 0.0), "agreement_lpips": (1e-4, 0.0),
    "baseline_psnr": (0.0, 1e-6), "baseline_ssim": (2e-6, 0.0), "baseline_lpips_alex": (1e-4, 0.0),
    "latent_consistency": (0.0, 1e-9), "seed_variance": (1e-6, 0.0),
    "invented_detail": (1e-4, 0.0), "invented_detail_baseline": (1e-4, 0.0), "lost_detail": (1e-4, 0.0),
    "invented_consistent": (1e-4, 0.0), "invented_contradicting": (1e-4, 0.0), "invented_peak": (1e-4, 1e-3),
    "distortion": (0.0, 1e-4), "hf_energy_ratio": (0.0, 1e-4), "hf_energy_ratio_baseline": (0.0, 1e-4),
    "chroma_peak": (2e-4, 1e-5),
    "text_cer": (0.0, 0.0), "text_wer": (0.0, 0.0), "text_invented": (0.0, 0.0),
}
#: per-image metrics with no torch path, and why (they run on the CPU whatever the run's device)
CPU_ONLY = {name: "OCR by the tesseract program (issue 30's text metrics)"
            for name in ("text_cer", "text_wer", "text_invented")}


def _image_metric_names() -> list[str]:
    """The shipped per-image metrics (named by a ``"module:attr"`` target), not the classes other tests register."""
    return [n for n in METRICS.names() if isinstance(METRICS.target(n), str) and isinstance(METRICS.factory(n), type)
            and issubclass(METRICS.factory(n), ImageMetric)]  # type: ignore[arg-type]


def test_every_default_per_image_metric_takes_the_device() -> None:
    names = _image_metric_names()
    assert len(names) >= 20
    for name in names:
        params = inspect.signature(METRICS.factory(name)).parameters
        assert "device" in params or name in CPU_ONLY, f"{name} cannot run on the run's device"
    assert set(names) <= set(TOLERANCE), "a new per-image metric needs a CUDA tolerance here"


def _sample() -> ImageSample:
    """A 2-seed case of a generative decoder at 320 px: reference, baseline, re-decoded output, latents."""
    from skimage import data

    ref = data.astronaut()[:320, 60:380].astype(np.float32) / 255.0
    rng = np.random.default_rng(0)

    def invent(seed: int) -> np.ndarray:
        tex = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(ref.shape[:2]), 1.0)
        out = ndimage.gaussian_filter(ref, (0.8, 0.8, 0)) + 0.03 * tex[..., None] * (ref.mean(2, keepdims=True) > 0.4)
        return np.clip(out + 0.005 * rng.standard_normal(ref.shape), 0, 1).astype(np.float32)

    def area_up(img: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(img).permute(2, 0, 1)[None]
        up = tf.interpolate(tf.avg_pool2d(t, 4), scale_factor=4, mode="bicubic", align_corners=False)
        return np.ascontiguousarray(up.clamp(0, 1)[0].permute(1, 2, 0).numpy())

    outs = [invent(1), invent(2)]
    bases = [area_up(ref), np.clip(area_up(ref) + 0.01, 0, 1).astype(np.float32)]
    lat = tf.avg_pool2d(torch.from_numpy(ref).permute(2, 0, 1)[None], 4)[0].numpy()
    rel = tf.avg_pool2d(torch.from_numpy(outs[0]).permute(2, 0, 1)[None], 4)[0].numpy()
    return ImageSample("c", outs[0], ref, caption="an astronaut", seed=0, latent=lat, reencoded=rel,
                       seed_outputs=outs, baseline=bases[0], redecoded=area_up(outs[0]), real=ref,
                       seed_baselines=bases)


def _clear_caches() -> None:
    """Forget the shared analyses and planes, so the second device computes its own."""
    from qa.metrics.functional.fidelity_torch import SCOPE
    from qa.metrics.invented.cache import CACHE

    CACHE.clear()
    SCOPE.clear()


def _compare_devices(device: str) -> list[str]:
    """Score every default per-image metric on the CPU (compiled kernels) and on ``device``; the names compared."""
    names = _image_metric_names()
    sample = _sample()
    cpu = {m.name: m for m in make_metrics(names, None, "cpu")}
    gpu = {m.name: m for m in make_metrics(names, None, device)}
    compared = []
    for name in names:
        a, b = cpu[name], gpu[name]
        assert isinstance(a, ImageMetric) and isinstance(b, ImageMetric)
        if a.unavailable_reason() is None:  # as the engine: a metric without its weights is not prepared
            a.prepare([sample])
        want = score_sample(a, sample, a.unavailable_reason())
        _TORCH_TIER[0] = True
        try:
            _clear_caches()
            if b.unavailable_reason() is None:
                b.prepare([sample])
            got = score_sample(b, sample, b.unavailable_reason())
        finally:
            _TORCH_TIER[0] = False
            _clear_caches()
        assert got.status == want.status, (name, want.detail, got.detail)
        if want.status != "ok":
            continue
        assert want.value is not None and got.value is not None
        atol, rtol = TOLERANCE[name]
        assert got.value == pytest.approx(want.value, abs=atol, rel=rtol), name
        if want.map is not None:
            assert got.map is not None and got.map.shape == want.map.shape, name
            assert float(np.abs(got.map - want.map).max()) < 2e-3 * max(1.0, float(np.abs(want.map).max())), name
        compared.append(name)
    return compared


#: everything that needs no downloaded weights
NO_WEIGHTS = {"psnr", "ssim", "ssim_skimage", "ms_ssim", "invented_detail", "invented_contradicting",
              "agreement_ssim", "seed_alignment", "seed_variance", "latent_consistency"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (torch.cuda.is_available() is False)")
def test_every_default_per_image_metric_on_cuda_matches_the_cpu() -> None:
    assert NO_WEIGHTS <= set(_compare_devices("cuda"))


def test_the_torch_tier_on_the_cpu_matches_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """What runs on a GPU (the torch tier of every step, the pairs batched in ``prepare``) run here on the CPU:
    the same rows as the kernels a pair at a time."""
    from qa.metrics import fidelity, perceptual
    from qa.metrics.functional import fidelity_torch
    from qa.metrics.invented import dispatch

    real = dispatch.kernels_take
    calls = {"torch": 0}

    def torch_tier_for_marked(*xs: torch.Tensor) -> bool:
        if _TORCH_TIER[0]:
            calls["torch"] += 1
            return False
        return real(*xs)

    monkeypatch.setattr(dispatch, "kernels_take", torch_tier_for_marked)
    for module in (fidelity, perceptual):
        monkeypatch.setattr(module, "batches_on", lambda device: _TORCH_TIER[0])
    prefilled: list[str] = []
    real_prefill = fidelity_torch.prefill
    monkeypatch.setattr(fidelity_torch, "prefill", lambda kind, pairs, device: (
        prefilled.append(kind), real_prefill(kind, pairs, device))[1])
    assert NO_WEIGHTS <= set(_compare_devices("cpu"))
    assert calls["torch"] > 0
    assert {"psnr", "ssim", "ssim_skimage", "ms_ssim"} <= set(prefilled)


_TORCH_TIER = [False]  # True while the second device scores: the patched dispatcher then picks torch
