"""``chroma_peak`` (qa/metrics/chroma.py) against an independent implementation: scikit-image's rgb2lab (float64),
numpy and scipy's gaussian_filter (sigma 8, ``reflect``, ``truncate=4``), on random and real images of odd sizes;
plus the properties the gate relies on (0 for equal images, blind to lightness, area-independent, located)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.color
import skimage.data
from scipy.ndimage import gaussian_filter

from qa.metrics.base import ImageSample, MetricInputError, NotApplicable
from qa.metrics.catalog import METRICS
from qa.metrics.chroma import REGION_SIGMA, ChromaPeak, chroma_peak
from qa.metrics.declarations import declaration
from qa.metrics.invented import dispatch

#: float32 against float64: absolute Delta E plus a relative part (measured: within 1.4e-5 on random pairs of
#: Delta E ~90, within 1e-6 on photos)
ATOL, RTOL = 2e-4, 1e-5


def reference_peak(out: np.ndarray, ref: np.ndarray, sigma: float = 8.0) -> tuple[float, np.ndarray]:
    """The definition in float64: RMS a*b* difference in a Gaussian region, its maximum, and the region field."""
    lab_o = skimage.color.rgb2lab(out.astype(np.float64))
    lab_r = skimage.color.rgb2lab(ref.astype(np.float64))
    d2 = ((lab_o[..., 1:] - lab_r[..., 1:]) ** 2).sum(-1)
    region = gaussian_filter(d2, sigma, mode="reflect", truncate=4.0)
    return float(np.sqrt(region.max())), np.sqrt(region)


def _close(value: float, expected: float) -> bool:
    return abs(value - expected) <= ATOL + RTOL * abs(expected)


def _photo(name: str) -> np.ndarray:
    img = getattr(skimage.data, name)()
    return img[..., :3].astype(np.float32) / 255.0


def _hue_rotated(img: np.ndarray, degrees: float, mask: np.ndarray) -> np.ndarray:
    """``img`` with the a*b* of the pixels under ``mask`` (weights in [0, 1]) rotated by ``degrees``."""
    lab = skimage.color.rgb2lab(img.astype(np.float64))
    t = np.radians(degrees)
    a, b = lab[..., 1], lab[..., 2]
    rot = lab.copy()
    rot[..., 1], rot[..., 2] = a * np.cos(t) - b * np.sin(t), a * np.sin(t) + b * np.cos(t)
    mixed = lab * (1 - mask[..., None]) + rot * mask[..., None]
    return np.clip(skimage.color.lab2rgb(mixed), 0, 1).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (37, 53), (64, 64), (129, 300)])
def test_random_images_match_the_reference(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    out = rng.random((*shape, 3), dtype=np.float32)
    ref = np.clip(out + rng.normal(0, 0.05, out.shape), 0, 1).astype(np.float32)
    expected, region = reference_peak(out, ref)
    got = chroma_peak(out, ref)
    assert _close(got.value, expected), (got.value, expected)
    # the located region is the strongest one (up to the tolerance: near-ties may pick a neighbour)
    assert _close(float(region[got.peak_y, got.peak_x]), expected)


@pytest.mark.parametrize(("name", "crop"), [("astronaut", (slice(0, 257), slice(101, 400))),
                                            ("coffee", (slice(11, 400), slice(0, 333))),
                                            ("chelsea", (slice(None), slice(None)))])
def test_photos_match_the_reference_and_locate_the_error(name: str, crop: tuple[slice, slice]) -> None:
    ref = _photo(name)[crop]
    h, w = ref.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    cy, cx = h // 3, (2 * w) // 3
    disc = np.clip(12.5 - np.hypot(yy - cy, xx - cx), 0, 1)  # a soft 24 px disc
    rng = np.random.default_rng(3)
    out = np.clip(_hue_rotated(ref, 40, disc) + rng.normal(0, 0.01, ref.shape), 0, 1).astype(np.float32)
    expected, region = reference_peak(out, ref)
    got = chroma_peak(out, ref)
    assert _close(got.value, expected), (got.value, expected)
    ey, ex = np.unravel_index(np.argmax(region), region.shape)
    assert abs(got.peak_y - ey) <= 1 and abs(got.peak_x - ex) <= 1
    assert np.hypot(got.peak_y - cy, got.peak_x - cx) <= 8  # at the recoloured disc


def test_torch_tier_matches_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Gaussian runs on the compiled kernels on a CPU and in torch elsewhere (a GPU): same numbers."""
    ref = _photo("astronaut")[:200, :301]
    out = np.clip(ref * np.array([1.04, 1.0, 0.95], np.float32), 0, 1)
    kernels = chroma_peak(out, ref)
    monkeypatch.setattr(dispatch, "USE_KERNELS", False)
    torch_tier = chroma_peak(out, ref)
    assert abs(kernels.value - torch_tier.value) <= 1e-5 * kernels.value
    assert (kernels.peak_y, kernels.peak_x) == (torch_tier.peak_y, torch_tier.peak_x)


def test_identical_images_score_zero_without_a_location() -> None:
    img = _photo("coffee")[:64, :80]
    value = ChromaPeak().compute(ImageSample("c", output=img, reference=img.copy()))
    assert value.value == 0.0 and value.extra == {}


def test_a_pure_lightness_change_is_not_a_colour_error() -> None:
    """A grey image made brighter (and its detail kept): luma metrics see it, chroma_peak about 0 (the D65 white
    of scikit-image's constants is not exactly the sRGB matrix's row sums: a grey is a* = -0.003 L-dependent)."""
    rng = np.random.default_rng(0)
    grey = gaussian_filter(rng.random((96, 128)), 2.0)
    ref = np.repeat(((grey - grey.min()) / np.ptp(grey) * 0.6 + 0.1)[..., None], 3, axis=2).astype(np.float32)
    out = ref + np.float32(0.15)
    got = chroma_peak(out, ref)
    assert got.value < 0.01  # against a JND of about 2.3 Delta E
    assert _close(got.value, reference_peak(out, ref)[0])


def test_a_coloured_patch_scores_the_same_in_any_image_size_at_the_patch() -> None:
    """Area-independence: an 8 x 8 px pink patch on grey scores the same in a 256 px and a 1024 px image (a
    mean over the image would fall 16-fold), and the peak is at the patch."""
    values = []
    for side in (256, 1024):
        ref = np.full((side, side, 3), 0.5, np.float32)
        out = ref.copy()
        c = side // 2
        out[c - 4:c + 4, c - 4:c + 4] = (0.62, 0.45, 0.52)
        got = chroma_peak(out, ref)
        assert (abs(got.peak_y - (c - 0.5)) <= 1) and (abs(got.peak_x - (c - 0.5)) <= 1)
        assert _close(got.value, reference_peak(out, ref)[0])
        values.append(got.value)
    assert values[0] > 2.3  # visible: over a just-noticeable difference
    assert abs(values[0] - values[1]) <= 1e-4 * values[0]


def test_the_metric_stores_where_the_peak_is() -> None:
    ref = np.full((80, 120, 3), 0.4, np.float32)
    out = ref.copy()
    out[10:18, 90:98] = (0.5, 0.35, 0.4)
    value = ChromaPeak().compute(ImageSample("c", output=out, reference=ref))
    assert value.value > 0 and set(value.extra) == {"peak_y", "peak_x"}
    assert abs(value.extra["peak_y"] - 13.5) <= 1 and abs(value.extra["peak_x"] - 93.5) <= 1


@pytest.mark.parametrize(("out", "ref", "match"), [
    (np.full((8, 8, 3), np.nan, np.float32), np.zeros((8, 8, 3), np.float32), "output contains NaN"),
    (np.zeros((8, 8, 3), np.float32), np.full((8, 8, 3), np.inf, np.float32), "reference contains NaN or Inf"),
    (np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32), "differ in size"),
    (np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32), r"must be an \(H, W, 3\) array"),
])
def test_bad_inputs_are_refused_with_the_reason(out: np.ndarray, ref: np.ndarray, match: str) -> None:
    with pytest.raises(MetricInputError, match=match):
        ChromaPeak().compute(ImageSample("c", output=out, reference=ref))


def test_without_a_reference_it_does_not_apply() -> None:
    with pytest.raises(NotApplicable, match="needs reference"):
        ChromaPeak().compute(ImageSample("c", output=np.zeros((8, 8, 3), np.float32)))


def test_registered_as_a_default_metric_with_its_declaration() -> None:
    assert "chroma_peak" in METRICS.names()
    d = declaration("chroma_peak")
    assert d.read == "source" and d.target.kind == "lower" and d.value_range == (0.0, float("inf"))
    assert d.needs == ("reference",) and d.level == "image" and "Delta E" in d.unit
    assert REGION_SIGMA == 8.0  # the region invented_peak reads
