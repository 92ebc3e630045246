"""The metric classes: needs, NotApplicable messages, the latent split, registry wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as nn_functional

from qa.decoders.simple import AreaDownsample
from qa.metrics.base import ImageSample, MetricInputError, NotApplicable
from qa.metrics.catalog import METRICS
from qa.metrics.invented import (
    Distortion,
    HFEnergyRatio,
    HFEnergyRatioBaseline,
    InventedConsistent,
    InventedContradicting,
    InventedDetail,
    InventedPeak,
    LatentConsistency,
    LostDetail,
    SeedVariance,
)
from qa.metrics.invented.metrics import latent_nrmse
from tests.metrics.invented.synth import add_luma, box, texture


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float()


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t[0].numpy().transpose(1, 2, 0))


def _upscale_sample(photo: np.ndarray, delta: np.ndarray | None) -> ImageSample:
    """x4 upscale track with area-x4 encoder: z = E(ref), output = bicubic(z) (+ delta), baseline = bicubic(z)."""
    enc = AreaDownsample(4)
    z = enc.encode(_t(photo))
    up = lambda lat: nn_functional.interpolate(lat, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)  # noqa: E731
    base = _np(up(z))
    out = base if delta is None else add_luma(base, delta)
    reenc = enc.encode(_t(out))
    return ImageSample("c", out, reference=photo, latent=z[0].numpy(), reencoded=reenc[0].numpy(),
                       baseline=base, redecoded=_np(up(reenc)))


def test_registered_and_declared() -> None:
    for name in ("invented_detail", "invented_peak", "lost_detail", "distortion", "hf_energy_ratio", "hf_energy_ratio_baseline",
                 "latent_consistency", "invented_consistent", "invented_contradicting", "seed_variance"):
        m = METRICS.create(name)
        assert m.name == name and m.higher_is_better is False
    assert METRICS.create("seed_variance").level == "case"


@pytest.mark.parametrize("cls", [InventedDetail, InventedPeak, LostDetail, Distortion, HFEnergyRatio])
def test_reference_metrics_without_reference_are_not_applicable(cls: type, photo: np.ndarray) -> None:
    with pytest.raises(NotApplicable, match="needs reference.*generation track"):
        cls().compute(ImageSample("c", photo, reference_note="generation track"))


def test_size_mismatch_is_an_input_error(photo: np.ndarray) -> None:
    with pytest.raises(MetricInputError, match="same size"):
        InventedDetail().compute(ImageSample("c", photo, reference=photo[:64, :64]))


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (40, 1)])
def test_a_one_pixel_side_is_an_input_error_that_says_so(shape: tuple[int, int]) -> None:
    """The derivative features need two samples per axis: a 1 px side gets a clear error (it was a torch
    ``narrow()`` error), not a number; 2 x 2 px is analysed."""
    ref = np.full((*shape, 3), 0.5, np.float32)
    out = ref + np.float32(0.1)
    for name in ("invented_detail", "invented_peak", "lost_detail", "invented_detail_baseline"):
        m = METRICS.create(name)
        m.prepare([ImageSample("c", out, reference=ref, baseline=ref)])  # the batch leaves it to compute
        with pytest.raises(MetricInputError, match=r"needs both sides >= 2 px"):
            m.compute(ImageSample("c", out, reference=ref, baseline=ref))
    tiny = np.full((2, 2, 3), 0.5, np.float32)
    assert InventedDetail().compute(ImageSample("c", tiny + np.float32(0.1), reference=tiny)).value == 0.0


def test_invented_detail_value_and_map(photo: np.ndarray) -> None:
    m = box(40, 80, 40, 80)
    mv = InventedDetail().compute(ImageSample("c", add_luma(photo, 0.06 * texture(5) * m), reference=photo))
    assert 0.0 < mv.value <= 1.0
    assert mv.map is not None and mv.map.shape == photo.shape[:2] and mv.map.dtype == np.float32
    assert float(mv.map.min()) >= 0.0 and m[np.unravel_index(int(np.argmax(mv.map)), m.shape)]


def test_latent_consistency_bicubic_near_zero_texture_larger(photo: np.ndarray) -> None:
    lc = LatentConsistency()
    plain = lc.compute(_upscale_sample(photo, None)).value
    # a texture with 8-px structure: survives 4x4 averaging, so it moves the latent
    invented = lc.compute(_upscale_sample(photo, 0.08 * texture(6) * box(0, 96, 0, 96))).value
    assert plain < 0.1
    assert invented > 2 * plain
    with pytest.raises(NotApplicable, match="needs latent"):
        lc.compute(ImageSample("c", photo, reference=photo))


def test_split_null_space_invention_is_consistent(photo: np.ndarray) -> None:
    """A 2x2 checker sums to 0 over every 4x4 block: invisible to area-x4, so all of it is 'consistent'; a
    16-px stripe pattern survives the averaging, so most of it contradicts the latent."""
    yy, xx = np.mgrid[:96, :96]
    checker = np.where(((yy // 2) + (xx // 2)) % 2 == 0, 1.0, -1.0) * box(24, 72, 24, 72)
    stripes = np.sin(2 * np.pi * xx / 16.0) * box(24, 72, 24, 72)
    for delta, consistent_share in ((0.1 * checker, (0.9, 1.0)), (0.1 * stripes, (0.0, 0.5))):
        s = _upscale_sample(photo, delta)
        total = InventedDetail().compute(s).value
        cons = InventedConsistent().compute(s).value
        contra = InventedContradicting().compute(s).value
        assert total > 0.003
        assert cons + contra == pytest.approx(total, rel=1e-6)
        assert consistent_share[0] <= cons / total <= consistent_share[1]


def test_split_needs_redecoded(photo: np.ndarray) -> None:
    with pytest.raises(NotApplicable, match="redecoded"):
        InventedConsistent().compute(ImageSample("c", photo, reference=photo, baseline=photo))


def test_hf_ratio_baseline(photo: np.ndarray) -> None:
    s = _upscale_sample(photo, 0.06 * texture(7) * box(0, 96, 0, 96))
    assert HFEnergyRatioBaseline().compute(s).value > 1.5
    assert HFEnergyRatio().compute(ImageSample("c", photo, reference=photo)).value == pytest.approx(1.0)
    flat = np.full_like(photo, 0.5)
    with pytest.raises(NotApplicable, match="no high-frequency energy"):
        HFEnergyRatio().compute(ImageSample("c", photo, reference=flat))


def test_seed_variance(photo: np.ndarray) -> None:
    sv = SeedVariance()
    same = sv.compute(ImageSample("c", photo, seed_outputs=[photo, photo.copy(), photo.copy()]))
    assert same.value == 0.0 and same.map is not None and float(same.map.max()) == 0.0
    m = box(10, 30, 10, 30)
    outs = [add_luma(photo, 0.05 * texture(s) * m) for s in range(3)]
    diff = sv.compute(ImageSample("c", outs[0], seed_outputs=outs))
    assert diff.value > 0 and diff.map is not None
    assert float(diff.map[~m].max()) < 1e-6 < float(diff.map[m].mean())
    with pytest.raises(NotApplicable, match="needs seeds"):
        sv.compute(ImageSample("c", photo, seed_outputs=[photo]))


def test_latent_nrmse() -> None:
    z = np.random.default_rng(0).normal(size=(4, 8, 8))
    assert latent_nrmse(z, z) == 0.0
    assert latent_nrmse(z, z + 0.1 * z.std()) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="differ in shape"):
        latent_nrmse(z, z[:, :4])


def _canvas(photo: np.ndarray, side: int) -> np.ndarray:
    """``photo`` (96 px) tiled into a side x side image (mirrored tiles, so no seams)."""
    row = np.concatenate([photo, photo[:, ::-1]], axis=1)
    tile = np.concatenate([row, row[::-1]], axis=0)
    reps = -(-side // tile.shape[0])
    return np.ascontiguousarray(np.tile(tile, (reps, reps, 1))[:side, :side])


def test_invented_peak_does_not_shrink_with_the_invented_area(photo: np.ndarray) -> None:
    """The same planted texture (a 40 x 40 box) in a 96-px and in a 288-px image: ``invented_detail`` (a share of
    the whole image's detail) falls about with the area (9x the pixels), ``invented_peak`` (its strongest
    region against the reference detail there) does not (it rises by up to 30%: in the small image the box is
    a sixth of the image and lifts its own surround's noise level); an unchanged image scores 0, and the
    region's centre lies in the box."""
    delta = 0.06 * texture(4) * box(30, 70, 20, 60)
    small_ref = photo
    big_ref = _canvas(photo, 288)  # the same 96-px content in its top-left corner
    big_delta = np.zeros(big_ref.shape[:2])
    big_delta[:96, :96] = delta
    values = {}
    for name, ref, d in (("small", small_ref, delta), ("big", big_ref, big_delta)):
        sample = ImageSample("c", add_luma(ref, d), reference=ref)
        peak = InventedPeak().compute(sample)
        values[name] = (InventedDetail().compute(sample).value, peak.value)
        assert 30 <= peak.extra["peak_y"] < 70 and 20 <= peak.extra["peak_x"] < 60, (name, peak.extra)
        assert InventedPeak().compute(ImageSample("c", ref, reference=ref)).value == 0.0
    (share_s, peak_s), (share_b, peak_b) = values["small"], values["big"]
    assert peak_s > 0.1  # a 0.06-RMS texture on the face and suit: a fifth of the detail that masks it there
    assert peak_s <= peak_b <= 1.3 * peak_s
    assert share_b < share_s / 5  # the share shrinks with the area
