"""Fine-structure kinds of the planted benchmark: invention finer than 4 px, and benign kinds that also live there.

Planted (on a faithful decode, in a randomly shaped, feathered region; peak amplitude 6-14/255 of luma):
- ``checker2``: the period-2 checkerboard of transposed convolutions and nearest-neighbour upsampling;
- ``grating``: a grating of period 2-4 px at any orientation (sinusoidal or square-wave profile);
- ``crossed``: two such gratings at different orientations (hatching, woven texture);
- ``strokes1``: 1-px strokes (hair, fur, text), dark or bright, random orientation and length;
- ``moire``: two gratings of nearly equal frequency (a beat, as aliasing of a fine grid produces).

Benign (what codecs, cameras and post-processing do, none of it invention):
- ``grain``: film grain (blurred Gaussian noise, 0.5-1 px grains, stronger in mid-tones);
- ``jpeg420low``: JPEG 4:2:0 at quality 8-18; ``chroma420``: chroma subsampling alone (YCbCr, 2x2 average);
- ``unsharp``: unsharp masking (radius 0.5-2 px, amount 0.4-1.5); ``denoise``: a denoiser's smoothing of a
  noisy decode (total variation, median or non-local means);
- ``rescale``: down by 0.45-0.75 and back up with a random filter (bilinear, bicubic, Lanczos).

Every parameter is drawn from the case's generator, so the cases are a pure function of split and seed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from PIL import Image
from scipy import ndimage

LUMA = np.array([0.299, 0.587, 0.114])
#: peak amplitude of the planted fine patterns, luma in [0, 1]
AMP_RANGE = (6 / 255, 14 / 255)


def region(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A random region of 40-100 px: rectangle, ellipse, rotated rectangle or blob, feathered 0.5-3 px.

    Returns (soft weight in [0, 1], hard mask = soft > 0.5), both (size, size).
    """
    hh, ww = (float(v) for v in rng.uniform(20, 50, 2))
    cy, cx = (float(v) for v in rng.uniform(50, size - 50, 2))
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    shape = int(rng.integers(4))
    if shape == 0:
        d = np.maximum(abs(yy - cy) / hh, abs(xx - cx) / ww)
    elif shape == 1:
        d = np.sqrt(((yy - cy) / hh) ** 2 + ((xx - cx) / ww) ** 2)
    elif shape == 2:
        a = rng.uniform(0, np.pi)
        u, v = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a), -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
        d = np.maximum(abs(u) / ww, abs(v) / hh)
    else:  # a blob: an ellipse whose radius is modulated by smooth noise
        ang = np.arctan2(yy - cy, xx - cx)
        k = rng.normal(0, 0.18, 4)
        mod = 1 + k[0] * np.cos(2 * ang) + k[1] * np.sin(2 * ang) + k[2] * np.cos(3 * ang) + k[3] * np.sin(3 * ang)
        d = np.sqrt(((yy - cy) / hh) ** 2 + ((xx - cx) / ww) ** 2) / np.clip(mod, 0.5, 1.5)
    hard = d < 1.0
    soft = ndimage.gaussian_filter(hard.astype(np.float64), float(rng.uniform(0.5, 3.0)))
    return soft, soft > 0.5


def _grating(rng: np.random.Generator, size: int, period: float | None = None, theta: float | None = None,
             square: bool | None = None) -> np.ndarray:
    """Unit-RMS grating (sampled), period 2-4 px, orientation and phase random."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    p = float(rng.uniform(2.0, 4.0)) if period is None else period
    th = float(rng.uniform(0, np.pi)) if theta is None else theta
    g = np.sin(2 * np.pi * (xx * np.cos(th) + yy * np.sin(th)) / p + rng.uniform(0, 2 * np.pi))
    if (rng.random() < 0.3) if square is None else square:
        g = np.sign(g)
    rms = float(np.sqrt(np.mean(g * g)))
    return g / rms if rms > 1e-3 else _grating(rng, size)  # period 2 sampled at its zeros: draw again


def _strokes(rng: np.random.Generator, size: int) -> np.ndarray:
    """1-px strokes of random orientation and length (3-15 px), in {0, 1} x sign."""
    canvas = np.zeros((size, size))
    for _ in range(int(rng.integers(1000, 2500))):
        y0, x0 = rng.uniform(0, size, 2)
        ang, ln = rng.uniform(0, np.pi), rng.uniform(3, 15)
        t = np.linspace(0, ln, int(ln * 2) + 2)
        ys = np.clip(np.round(y0 + t * np.sin(ang)).astype(int), 0, size - 1)
        xs = np.clip(np.round(x0 + t * np.cos(ang)).astype(int), 0, size - 1)
        canvas[ys, xs] = 1.0
    return canvas * (1.0 if rng.random() < 0.5 else -1.0)


def fine_pattern(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A fine pattern of peak magnitude about 1 (sinusoids: unit RMS times sqrt 2), (size, size)."""
    if kind == "checker2":
        yy, xx = np.mgrid[:size, :size]
        return np.where((yy + xx) % 2 == 0, 1.0, -1.0)
    if kind == "grating":
        return _grating(rng, size) / np.sqrt(2)
    if kind == "crossed":
        th = float(rng.uniform(0, np.pi))
        dth = float(rng.uniform(np.pi / 6, np.pi / 2))
        return (_grating(rng, size, theta=th) + _grating(rng, size, theta=th + dth)) / 2
    if kind == "moire":
        p, th = float(rng.uniform(2.0, 3.5)), float(rng.uniform(0, np.pi))
        p2, th2 = p * float(rng.uniform(1.03, 1.12)), th + float(rng.uniform(-0.08, 0.08))
        return (_grating(rng, size, p, th, False) + _grating(rng, size, p2, th2, False)) / 2
    if kind == "strokes1":
        return _strokes(rng, size)
    raise ValueError(f"unknown fine kind {kind!r}")


FINE_PLANTED = ("checker2", "grating", "crossed", "strokes1", "moire")


def planted_fine(base: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Each fine kind planted on ``base`` (H, W, 3) in a new random region; yields (kind, output, hard mask)."""
    size = base.shape[0]
    for kind in FINE_PLANTED:
        soft, hard = region(rng, size)
        delta = float(rng.uniform(*AMP_RANGE)) * fine_pattern(kind, rng, size) * soft
        yield kind, np.clip(base + delta[..., None], 0, 1).astype(np.float32), hard


def _jpeg420(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, format="JPEG", quality=quality,
                                                                           subsampling=2)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0


def _chroma420(img: np.ndarray) -> np.ndarray:
    """Full-range BT.601 YCbCr, Cb and Cr averaged over 2x2 blocks and bilinearly upsampled, back to RGB."""
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    ycc = img.astype(np.float64) @ m.T
    h, w = img.shape[:2]
    for c in (1, 2):
        small = ycc[..., c].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        ycc[..., c] = np.asarray(Image.fromarray(small.astype(np.float32), mode="F").resize((w, h),
                                                                                           Image.Resampling.BILINEAR))
    return np.clip(ycc @ np.linalg.inv(m).T, 0, 1).astype(np.float32)


def _resize(img: np.ndarray, hw: tuple[int, int], method: int) -> np.ndarray:
    chans = [np.asarray(Image.fromarray(img[..., c].astype(np.float32), mode="F").resize(hw[::-1], method))
             for c in range(img.shape[2])]
    return np.clip(np.stack(chans, axis=2), 0, 1).astype(np.float32)


def _denoise(noisy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    which = int(rng.integers(3))
    if which == 0:
        out = denoise_tv_chambolle(noisy, weight=float(rng.uniform(0.03, 0.1)), channel_axis=2)
    elif which == 1:
        out = ndimage.median_filter(noisy, size=(3, 3, 1), mode="reflect")
    else:
        sigma = float(np.std(noisy - ndimage.gaussian_filter(noisy, (1, 1, 0))))
        out = denoise_nl_means(noisy, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=5, fast_mode=True,
                               channel_axis=2)
    return np.clip(out, 0, 1).astype(np.float32)


def benign_fine(ref: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """The benign kinds above, from the reference ``ref`` and its faithful decode ``base``."""
    size = ref.shape[0]
    n = ndimage.gaussian_filter(rng.normal(size=(size, size)), float(rng.uniform(0.5, 1.0)))
    lum = ndimage.gaussian_filter(base @ LUMA, 2.0)
    gain = 0.4 + 2.4 * np.clip(lum * (1 - lum), 0, 0.25)  # 0.4 in deep shadows and highlights, 1.0 in mid-tones
    grain = (n / n.std()) * gain * float(rng.uniform(0.01, 0.03))
    chroma = rng.normal(size=(size, size, 3)) * 0.2 * float(np.std(grain))
    yield "grain", np.clip(base + grain[..., None] + chroma, 0, 1).astype(np.float32)
    yield "jpeg420low", _jpeg420(ref, int(rng.integers(8, 19)))
    yield "chroma420", _chroma420(ref)
    r, a = float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.4, 1.5))
    yield "unsharp", np.clip(base + a * (base - ndimage.gaussian_filter(base, (r, r, 0))), 0, 1).astype(np.float32)
    noisy = np.clip(base + rng.normal(0, float(rng.uniform(0.01, 0.03)), base.shape), 0, 1)
    yield "denoise", _denoise(noisy, rng)
    f = float(rng.uniform(0.45, 0.75))
    filters = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)
    down = _resize(ref, (round(size * f), round(size * f)), filters[int(rng.integers(3))])
    yield "rescale", _resize(down, (size, size), filters[int(rng.integers(1, 3))])
