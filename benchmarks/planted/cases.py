"""The planted-hallucination benchmark: cases built from photos that ship inside Python packages.

Every case is (reference, output, kind, group, mask): ``group`` is ``faithful``, ``benign`` or ``planted``;
``mask`` (H, W) bool marks the planted region (all False otherwise). Everything is a pure function of the photo
split and a seed, so the numbers in ``docs/hallucination.md`` can be reproduced exactly. The fine-structure
kinds (finer than 4 px) and the benign kinds that also live there are in :mod:`benchmarks.planted.fine`.

Splits (tuned on one, reported on the other; they share no photo, no texture source and no seed):
- ``tune``: skimage astronaut, coffee, chelsea; texture sources skimage brick, gravel; seeds 0..
- ``heldout``: skimage rocket, immunohistochemistry, sklearn china, flower, matplotlib grace_hopper;
  texture sources skimage grass, moon; seeds 1000..
- ``photos-tune``, ``photos-heldout``: photographs from Debian wallpaper packages and small, local invention
  (:mod:`benchmarks.planted.debian_photos`, :mod:`benchmarks.planted.photo_cases`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from benchmarks.planted.debian_photos import PHOTO_SPLITS
from benchmarks.planted.fine import benign_fine, planted_fine

SIZE = 256
#: added to a case's seed for the fine-structure kinds (benchmarks/planted/fine.py); keeps the splits disjoint
FINE_SEED_OFFSET = 50_000
CROPS_PER_PHOTO = 2
SPLITS = {
    "tune": {"photos": ["astronaut", "coffee", "chelsea"], "textures": ["brick", "gravel"], "seed": 0},
    "heldout": {
        "photos": ["rocket", "immunohistochemistry", "china", "flower", "grace_hopper"],
        "textures": ["grass", "moon"],
        "seed": 1000,
    },
}
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass
class Case:
    """One benchmark item. Images float32 (H, W, 3) in [0, 1]; ``mask`` (H, W) bool (planted region)."""

    name: str
    photo: str
    kind: str
    group: str
    reference: np.ndarray
    output: np.ndarray
    mask: np.ndarray


def load_photo(name: str) -> np.ndarray:
    """A package-shipped photo as float32 (H, W, 3) in [0, 1] (grayscale replicated)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        arr = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        import matplotlib.cbook as cbook

        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            arr = np.asarray(Image.open(fh).convert("RGB"))
    else:
        import skimage.data

        arr = getattr(skimage.data, name)()
    arr = np.asarray(arr, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr[..., :3]


def _crop(img: np.ndarray, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    h, w = img.shape[:2]
    if min(h, w) > 2 * size:  # large photos: shrink first so a crop holds a scene, not a few pixels of it
        f = 2 * size / min(h, w)
        img = _resize(img, (round(h * f), round(w * f)))
        h, w = img.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(img[y : y + size, x : x + size])


def _resize(img: np.ndarray, hw: tuple[int, int], method: int = Image.Resampling.BICUBIC) -> np.ndarray:
    chans = [np.asarray(Image.fromarray(img[..., c].astype(np.float32), mode="F").resize(hw[::-1], method))
             for c in range(img.shape[2])]
    return np.clip(np.stack(chans, axis=2), 0, 1).astype(np.float32)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect").astype(np.float32)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0


def _down_up(img: np.ndarray, factor: int) -> np.ndarray:
    h, w = img.shape[:2]
    small = img.reshape(h // factor, factor, w // factor, factor, 3).mean(axis=(1, 3))
    return _resize(small.astype(np.float32), (h, w))


def faithful(ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A faithful decode: mild VAE-like smoothing (Gaussian sigma 0.4-0.7) or a slight down-up resampling."""
    if rng.random() < 0.5:
        return _blur(ref, float(rng.uniform(0.4, 0.7)))
    h, w = ref.shape[:2]
    f = float(rng.uniform(0.8, 0.9))
    return _resize(_resize(ref, (round(h * f), round(w * f))), (h, w))


def benign(ref: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """Benign degradations of a faithful decode: blur, JPEG, noise, colour and tone shifts, resampling, shift."""
    base = faithful(ref, rng)
    yield "faithful", base
    for s in (1.0, 2.0, 3.0):
        yield f"blur{s:g}", _blur(ref, s)
    for q in (20, 40, 70):
        yield f"jpeg{q}", _jpeg(ref, q)
    for n in (0.01, 0.02, 0.03):
        yield f"noise{n:g}", np.clip(base + rng.normal(0, n, base.shape), 0, 1).astype(np.float32)
    gain = rng.uniform(0.85, 1.15, 3)
    off = rng.uniform(-0.06, 0.06, 3)
    yield "colour", np.clip(base * gain + off, 0, 1).astype(np.float32)
    gamma = float(rng.choice([0.7, 1.4]))
    yield "gamma", (np.clip(base, 0, 1) ** gamma).astype(np.float32)
    for f in (2, 4):
        yield f"resample{f}", _down_up(ref, f)
    d = rng.uniform(0.3, 0.7, 2)
    yield "shift", np.clip(ndimage.shift(ref, (d[0], d[1], 0), order=3, mode="reflect"), 0, 1).astype(np.float32)


def _mask(rng: np.random.Generator, size: int = SIZE, centre: tuple[int, int] | None = None) -> np.ndarray:
    """A rectangle or ellipse of side 48-96 px at a random (or given) place."""
    hh, ww = (int(v) for v in rng.integers(24, 49, 2))
    if centre is None:
        cy, cx = int(rng.integers(hh, size - hh)), int(rng.integers(ww, size - ww))
    else:
        cy, cx = (int(np.clip(centre[0], hh, size - hh)), int(np.clip(centre[1], ww, size - ww)))
    yy, xx = np.mgrid[:size, :size]
    if rng.random() < 0.5:
        return (abs(yy - cy) < hh) & (abs(xx - cx) < ww)
    return ((yy - cy) / hh) ** 2 + ((xx - cx) / ww) ** 2 < 1.0


def _highpass(y: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return y - ndimage.gaussian_filter(y, sigma, mode="reflect")


def _unit(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x[m] ** 2)))
    return x / rms if rms > 0 else x


def _add_luma(base: np.ndarray, delta: np.ndarray, mask: np.ndarray) -> np.ndarray:
    soft = ndimage.gaussian_filter(mask.astype(np.float64), 1.0)
    return np.clip(base + (soft * delta)[..., None], 0, 1).astype(np.float32)


def _pattern(kind: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    if kind == "stripes":
        th, period = rng.uniform(0, np.pi), rng.uniform(3.0, 8.0)
        return np.sin(2 * np.pi * (xx * np.cos(th) + yy * np.sin(th)) / period)
    if kind == "checker":
        p = int(rng.integers(2, 6))
        return np.where(((yy // p) + (xx // p)) % 2 == 0, 1.0, -1.0)
    # text-like strokes: short random line segments, 1-2 px wide
    canvas = np.zeros((size, size))
    for _ in range(int(rng.integers(400, 700))):
        y0, x0 = rng.uniform(0, size, 2)
        ang, ln = rng.uniform(0, np.pi), rng.uniform(4, 12)
        t = np.linspace(0, ln, int(ln * 2) + 2)
        ys = np.clip((y0 + t * np.sin(ang)).astype(int), 0, size - 1)
        xs = np.clip((x0 + t * np.cos(ang)).astype(int), 0, size - 1)
        canvas[ys, xs] = 1.0
    canvas = ndimage.grey_dilation(canvas, size=(int(rng.integers(1, 3)),) * 2)
    return canvas - canvas.mean()


def _phase_randomise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft2(x)
    phase = np.exp(1j * rng.uniform(0, 2 * np.pi, spec.shape))
    return np.fft.irfft2(np.abs(spec) * phase, s=x.shape)


def planted(
    ref: np.ndarray, rng: np.random.Generator, textures: list[np.ndarray]
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Faithful decodes with invented detail planted in a known region; yields (kind, output, mask).

    Planted amplitude: RMS of the added luma inside the region, 0.03-0.08 (of a [0, 1] range).
    """
    base = faithful(ref, rng)
    y_ref = ref @ LUMA
    amp = lambda: float(rng.uniform(0.03, 0.08))  # noqa: E731
    # texture transplanted from another photo (its high-pass; the low-pass of the original stays)
    m = _mask(rng)
    src = textures[int(rng.integers(len(textures)))]
    tex = _unit(_highpass(_texture_crop(src, rng) @ LUMA), m)
    yield "transplant", _add_luma(base - _band_removed(base, m), amp() * tex, m), m
    for kind in ("stripes", "checker", "strokes"):
        m = _mask(rng)
        yield kind, _add_luma(base, amp() * _unit(_pattern(kind, rng), m), m), m
    # re-drawn detail: the region's own detail replaced by a phase-randomised copy (same spectrum, new content),
    # placed where the reference has detail to redraw
    energy = ndimage.gaussian_filter(_highpass(y_ref) ** 2, 16)
    cy, cx = np.unravel_index(int(np.argmax(energy * rng.uniform(0.5, 1.0, energy.shape))), energy.shape)
    m = _mask(rng, centre=(int(cy), int(cx)))
    hp = _highpass(base @ LUMA)
    redrawn = _phase_randomise(hp, rng)
    redrawn *= np.sqrt(np.mean(hp[m] ** 2) / max(np.mean(redrawn[m] ** 2), 1e-12))
    yield "redrawn", _add_luma(base, (redrawn - hp), m), m
    # a GAN-upsampler-like region: blurred base plus the high-pass of another source
    m = _mask(rng)
    src = textures[int(rng.integers(len(textures)))]
    soft = ndimage.gaussian_filter(m.astype(np.float64), 1.0)[..., None]
    blurred = (1 - soft) * base + soft * _blur(base, 2.0)
    yield "hp_added", _add_luma(blurred, amp() * _unit(_highpass(_texture_crop(src, rng) @ LUMA, 1.0), m), m), m


def _texture_crop(src: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The most detailed of 4 random crops of a texture source shrunk to half size (dense texture, not a few
    isolated mortar lines or stars)."""
    h, w = src.shape[:2]
    small = _resize(src, (h // 2, w // 2)) if min(h, w) // 2 >= SIZE else src
    crops = [_crop(small, rng) for _ in range(4)]
    return max(crops, key=lambda c: float(np.mean(_highpass(c @ LUMA) ** 2)))


def _band_removed(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The high-pass (sigma 2) of ``img`` inside ``m`` (soft edge), to subtract before a transplant."""
    soft = ndimage.gaussian_filter(m.astype(np.float64), 1.0)[..., None]
    return soft * (img - _blur(img, 2.0))


def build(split: str, on_case: Callable[[Case], None] | None = None) -> list[Case]:
    """All cases of a split (``tune``, ``heldout``, ``photos-tune`` or ``photos-heldout``), deterministic."""
    if split in PHOTO_SPLITS:
        from benchmarks.planted.photo_cases import build_photos

        built = build_photos(split)
        for c in built if on_case is not None else ():
            on_case(c)  # type: ignore[misc]
        return built
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {sorted(SPLITS) + sorted(PHOTO_SPLITS)}")
    spec = SPLITS[split]
    textures = [load_photo(t) for t in spec["textures"]]  # type: ignore[union-attr]
    cases: list[Case] = []
    for pi, photo in enumerate(spec["photos"]):  # type: ignore[union-attr]
        img = load_photo(photo)
        for ci in range(CROPS_PER_PHOTO):
            rng = np.random.default_rng(int(spec["seed"]) + 100 * pi + ci)  # type: ignore[call-overload]
            ref = _crop(img, rng)
            none = np.zeros(ref.shape[:2], bool)
            for kind, out in benign(ref, rng):
                group = "faithful" if kind == "faithful" else "benign"
                cases.append(Case(f"{photo}-{ci}-{kind}", photo, kind, group, ref, out, none))
            for kind, out, m in planted(ref, rng, textures):
                cases.append(Case(f"{photo}-{ci}-{kind}", photo, kind, "planted", ref, out, m))
            # the fine-structure kinds draw from their own generator, so the kinds above are unchanged
            rng_f = np.random.default_rng(int(spec["seed"]) + 100 * pi + ci + FINE_SEED_OFFSET)  # type: ignore[call-overload]
            base = faithful(ref, rng_f)
            for kind, out in benign_fine(ref, base, rng_f):
                cases.append(Case(f"{photo}-{ci}-{kind}", photo, kind, "benign", ref, out, none))
            for kind, out, m in planted_fine(base, rng_f):
                cases.append(Case(f"{photo}-{ci}-{kind}", photo, kind, "planted", ref, out, m))
    if on_case is not None:
        for c in cases:
            on_case(c)
    return cases
