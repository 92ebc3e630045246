"""Agreement measures of the generate track against scikit-image's PSNR/SSIM, and seed alignment."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from qa.metrics.agreement import AgreementPSNR, AgreementSSIM, SeedAlignment
from qa.metrics.base import ImageSample, MetricInputError, NotApplicable
from qa.metrics.fidelity import SSIM


def _img(rng: np.random.Generator, side: int = 32) -> np.ndarray:
    coarse = rng.random((side // 8, side // 8, 3))
    return np.kron(coarse, np.ones((8, 8, 1))).astype(np.float32)


def _sample(outs: list[np.ndarray], bases: list[np.ndarray]) -> ImageSample:
    return ImageSample("c", outs[0], caption="x", seed_outputs=outs, baseline=bases[0], seed_baselines=bases)


def test_agreement_psnr_and_ssim_equal_scikit_image() -> None:
    rng = np.random.default_rng(0)
    base = _img(rng)
    out = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)
    s = ImageSample("c", out, baseline=base)
    assert AgreementPSNR().compute(s).value == pytest.approx(peak_signal_noise_ratio(base, out, data_range=1.0), abs=1e-4)
    # agreement_ssim is the ssim metric (MATLAB luma variant, checked against published values in tests/metrics)
    # with the baseline in the reference's place
    assert AgreementSSIM().compute(s).value == pytest.approx(SSIM().compute(ImageSample("c", out, base)).value,
                                                             abs=1e-12)
    with pytest.raises(NotApplicable):
        AgreementPSNR().compute(ImageSample("c", out))


def test_seed_alignment_equals_its_definition_with_scikit_image_psnr() -> None:
    rng = np.random.default_rng(1)
    bases = [_img(rng) for _ in range(3)]
    outs = [np.clip(b + rng.normal(0, 0.03, b.shape), 0, 1).astype(np.float32) for b in bases]
    res = SeedAlignment().compute(_sample(outs, bases))
    p = [[peak_signal_noise_ratio(b, o, data_range=1.0) for b in bases] for o in outs]
    same = np.mean([p[i][i] for i in range(3)])
    other = np.mean([p[i][j] for i in range(3) for j in range(3) if i != j])
    assert res.value == pytest.approx(same - other, abs=1e-3)
    assert res.value > 10  # outputs close to their own seed's source


def test_seed_alignment_is_zero_for_samples_that_agree_only_in_distribution() -> None:
    rng = np.random.default_rng(2)
    values = []
    for _ in range(40):  # outputs drawn independently of the per-seed sources: about 0 dB on average
        bases, outs = [_img(rng) for _ in range(2)], [_img(rng) for _ in range(2)]
        values.append(SeedAlignment().compute(_sample(outs, bases)).value)
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values)) + 0.05
    # a decoder that swaps seeds is worse than unrelated: negative
    bases = [_img(rng) for _ in range(2)]
    assert SeedAlignment().compute(_sample(bases[::-1], bases)).value < -5
    # a seed-ignoring decoder (same output for every seed) cannot be aligned: exactly 0 for two seeds
    assert SeedAlignment().compute(_sample([bases[0], bases[0]], bases)).value == pytest.approx(0.0, abs=1e-9)


def test_seed_alignment_needs_per_seed_baselines() -> None:
    rng = np.random.default_rng(3)
    a, b = _img(rng), _img(rng)
    with pytest.raises(NotApplicable, match="identical"):
        SeedAlignment().compute(_sample([a, b], [a, a]))
    with pytest.raises(NotApplicable, match="per-seed"):
        SeedAlignment().compute(ImageSample("c", a, seed_outputs=[a, b], baseline=a))
    with pytest.raises(NotApplicable, match="seeds"):
        SeedAlignment().compute(_sample([a], [a]))
    with pytest.raises(MetricInputError, match="differ"):
        SeedAlignment().compute(_sample([a, b], [a[:16], b[:16]]))


def test_invented_detail_baseline_is_invented_detail_with_the_baseline_as_reference() -> None:
    from qa.metrics.invented.metrics import InventedDetail, InventedDetailBaseline

    rng = np.random.default_rng(4)
    base = _img(rng, 64)
    out = base.copy()
    yy, xx = np.mgrid[0:32, 0:32]
    stripes = 0.2 * np.sin(2 * np.pi * (xx + 0.5 * yy) / 5.0)[..., None]  # structured texture (not i.i.d. noise)
    out[16:48, 16:48] += stripes.astype(np.float32)
    out = np.clip(out, 0, 1)
    got = InventedDetailBaseline().compute(ImageSample("c", out, baseline=base))
    same = InventedDetail().compute(ImageSample("c", out, reference=base))
    assert got.value == pytest.approx(same.value, abs=1e-12) and got.value > 0.1
    assert got.map is not None and got.map[24:40, 24:40].mean() > 5 * got.map[:8, :8].mean()  # where: the square
    assert InventedDetailBaseline().compute(ImageSample("c", base, baseline=base)).value < 0.02
    with pytest.raises(NotApplicable, match="baseline"):
        InventedDetailBaseline().compute(ImageSample("c", out, reference=base))
