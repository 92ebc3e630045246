"""Kinds of the ``photos-*`` splits: small, local invention on real photos, and codecs other than 8 x 8 JPEG.

Every planted kind is put on a *mild faithful decode* of the reference (:func:`mild`: identity, slight noise,
high-quality JPEG or slight blur, drawn per case), so only the planted change is invention.

Planted in a region (IoU against its mask):
- ``text``: 1-3 lines of words in a 9-16 px font, luma 10-30/255 away from the local background (faint);
  mask = the union of the lines' ink boxes;
- ``object``: a patch of another photo (a blob of 20-56 px) pasted in, its mean colour matched to the ring
  around it and its contrast scaled 0.6-1; mask = the blob;
- ``warp``: a smooth local displacement (a Gaussian bump translation or a swirl, sigma 10-22 px, peak 1.5-3 px)
  centred on detail; mask = where the displacement is at least 1 px;
- ``redrawn``: the high-pass (sigma 2 px) of a 40-100 px region replaced by a phase-randomised copy (same
  spectrum and energy, other content), centred on detail.
Planted over the whole image (mask = every pixel; no IoU):
- ``texture_all``: the high-pass of another photo added (RMS 0.008-0.02 of luma), the decode's own detail
  weakened by 0-50%;
- ``grating_all``: a grating (period 2.5-6 px, sine or square) or a checkerboard (squares of 1-3 px) of peak
  amplitude 3-5/255, on the flattest of 16 crops of the photo (sky, walls, fog).
Benign: the four mild decodes (group ``faithful``), and ``webp`` (lossy WebP, quality 5-40: VP8's 4 x 4
transforms and loop filter), ``avif`` (AVIF, quality 10-50) where Pillow writes it, ``jpeg420low`` (JPEG 4:2:0,
quality 8-18), ``shift`` (0.3-0.7 px, bicubic), ``noise`` (sigma 0.01-0.03), ``grain`` (as the fine split's),
``rescale`` (down by 0.45-0.75 and back), ``unsharp`` and ``blur`` (sigma 1-2 px).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features
from scipy import ndimage

from benchmarks.planted.fine import benign_fine, region

LUMA = np.array([0.299, 0.587, 0.114])
#: words the text kind draws from (signage, labels, captions: what a generative decoder writes)
WORDS = ("SALE", "OPEN", "exit", "Hotel", "PARK", "cafe", "No 42", "STOP", "river", "Station", "2024", "bakery",
         "CLOSED", "north", "Museum", "taxi", "Route 9", "love", "FRESH", "garden", "Bar", "quiet", "EXIT 3")
REGION_KINDS = ("text", "object", "warp", "redrawn")
WHOLE_KINDS = ("texture_all", "grating_all")


def _codec(img: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, format=fmt, quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect").astype(np.float32)


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 1).astype(np.float32)


def mild(ref: np.ndarray, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """A mild faithful decode: ``identity``, ``noise_slight`` (sigma 0.002-0.006), ``jpeg_hq`` (quality 88-96)
    or ``blur_slight`` (sigma 0.4-0.7 px), drawn from ``rng``."""
    which = int(rng.integers(4))
    if which == 0:
        return "identity", ref.copy()
    if which == 1:
        return "noise_slight", _clip(ref + rng.normal(0, float(rng.uniform(0.002, 0.006)), ref.shape))
    if which == 2:
        return "jpeg_hq", _codec(ref, "JPEG", int(rng.integers(88, 97)))
    return "blur_slight", _blur(ref, float(rng.uniform(0.4, 0.7)))


def _highpass(y: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return y - ndimage.gaussian_filter(y, sigma, mode="reflect")


def _detailed_point(y: np.ndarray, rng: np.random.Generator, margin: int) -> tuple[int, int]:
    """A random point weighted towards where ``y`` has detail (local high-pass energy), ``margin`` px inside."""
    e = ndimage.gaussian_filter(_highpass(y) ** 2, 12)[margin:-margin, margin:-margin]
    cy, cx = np.unravel_index(int(np.argmax(e * rng.uniform(0.3, 1.0, e.shape))), e.shape)
    return int(cy) + margin, int(cx) + margin


def text(base: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Faint text on ``base``; returns (output, mask = the union of the lines' ink boxes)."""
    size = base.shape[0]
    font = ImageFont.load_default(size=int(rng.integers(9, 17)))
    lines = [" ".join(str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 4))))
             for _ in range(int(rng.integers(1, 4)))]
    ink = Image.new("L", (size, size))
    draw = ImageDraw.Draw(ink)
    boxes = [draw.textbbox((0, 0), ln, font=font) for ln in lines]
    step = max(b[3] for b in boxes) + int(rng.integers(1, 5))
    x0 = int(rng.integers(4, max(5, size - max(b[2] for b in boxes) - 4)))
    y0 = int(rng.integers(4, max(5, size - step * len(lines) - 4)))
    mask = np.zeros((size, size), bool)
    for i, ln in enumerate(lines):
        line = Image.new("L", (size, size))
        ImageDraw.Draw(line).text((x0, y0 + i * step), ln, font=font, fill=255)
        ys, xs = np.nonzero(np.asarray(line) > 64)
        if ys.size:
            mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1] = True
        draw.text((x0, y0 + i * step), ln, font=font, fill=255)
    alpha = np.asarray(ink, np.float64) / 255.0
    local = float(np.mean(ndimage.gaussian_filter(base @ LUMA, 8)[mask])) if mask.any() else 0.5
    sign = 1.0 if local < 0.5 else -1.0
    return _clip(base + (sign * float(rng.uniform(10, 30)) / 255 * alpha)[..., None]), mask


def inserted_object(base: np.ndarray, source: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A blob of ``source`` (another photo, (>= size, >= size, 3)) pasted into ``base``, its mean colour matched to
    its surround; returns (output, mask)."""
    size = base.shape[0]
    hh, ww = (float(v) for v in rng.uniform(10, 28, 2))
    cy, cx = (float(v) for v in rng.uniform(34, size - 34, 2))
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    ang = np.arctan2(yy - cy, xx - cx)
    k = rng.normal(0, 0.15, 4)
    mod = 1 + k[0] * np.cos(2 * ang) + k[1] * np.sin(2 * ang) + k[2] * np.cos(3 * ang) + k[3] * np.sin(3 * ang)
    hard = np.sqrt(((yy - cy) / hh) ** 2 + ((xx - cx) / ww) ** 2) / np.clip(mod, 0.6, 1.4) < 1.0
    soft = ndimage.gaussian_filter(hard.astype(np.float64), float(rng.uniform(0.5, 1.5)))
    sy, sx = (int(rng.integers(0, s - size + 1)) for s in source.shape[:2])
    patch = source[sy:sy + size, sx:sx + size].astype(np.float64)
    ring = ndimage.binary_dilation(hard, iterations=6) & ~ndimage.binary_dilation(hard, iterations=2)
    inside = patch[hard].mean(axis=0)
    patch = (patch - inside) * float(rng.uniform(0.6, 1.0)) + base[ring].mean(axis=0)
    return _clip(base * (1 - soft[..., None]) + patch * soft[..., None]), soft > 0.5


def warp(base: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A smooth local displacement of ``base`` centred on detail; returns (output, mask where |d| >= 1 px)."""
    size = base.shape[0]
    s, peak = float(rng.uniform(10, 22)), float(rng.uniform(1.5, 3.0))
    cy, cx = _detailed_point(base @ LUMA, rng, margin=int(2 * s))
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    ry, rx = yy - cy, xx - cx
    r2 = (ry * ry + rx * rx) / (s * s)
    if rng.random() < 0.5:  # a translation bump in a random direction
        th = float(rng.uniform(0, 2 * np.pi))
        g = peak * np.exp(-0.5 * r2)
        dy, dx = g * np.sin(th), g * np.cos(th)
    else:  # a swirl: tangential displacement peaking at radius s
        g = peak * np.exp(0.5 - 0.5 * r2) / s * (1.0 if rng.random() < 0.5 else -1.0)
        dy, dx = g * rx, -g * ry
    coords = [yy + dy, xx + dx]
    out = np.stack([ndimage.map_coordinates(base[..., c].astype(np.float64), coords, order=3, mode="reflect")
                    for c in range(3)], axis=2)
    return _clip(out), np.hypot(dy, dx) >= 1.0


def redrawn(base: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A region's high-pass (sigma 2) replaced by a phase-randomised copy of equal energy, centred on detail."""
    size = base.shape[0]
    soft, hard = region(rng, size)
    y = base @ LUMA
    cy, cx = _detailed_point(y, rng, margin=50)
    com = ndimage.center_of_mass(hard)
    shift = (cy - com[0], cx - com[1])
    soft = ndimage.shift(soft, shift, order=1, mode="constant")
    hard = soft > 0.5
    hp = _highpass(y)
    spec = np.fft.rfft2(hp)
    new = np.fft.irfft2(np.abs(spec) * np.exp(1j * rng.uniform(0, 2 * np.pi, spec.shape)), s=hp.shape)
    new *= np.sqrt(np.mean(hp[hard] ** 2) / max(float(np.mean(new[hard] ** 2)), 1e-12))
    return _clip(base + (soft * (new - hp))[..., None]), hard


def texture_all(base: np.ndarray, source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another photo's high-pass (sigma 2) added over the whole image, the decode's own detail weakened."""
    size = base.shape[0]
    sy, sx = (int(rng.integers(0, s - size + 1)) for s in source.shape[:2])
    tex = _highpass(source[sy:sy + size, sx:sx + size].astype(np.float64) @ LUMA)
    tex /= max(float(np.sqrt(np.mean(tex * tex))), 1e-6)
    own = base - _blur(base, 2.0)
    return _clip(base - float(rng.uniform(0, 0.5)) * own + (float(rng.uniform(0.008, 0.02)) * tex)[..., None])


def grating_all(flat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A weak grating or checkerboard (peak 3-5/255) over the whole of ``flat`` (a flat-ground crop)."""
    size = flat.shape[0]
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    amp = float(rng.uniform(3, 5)) / 255
    if rng.random() < 0.25:
        p = int(rng.integers(1, 4))
        g = np.where(((yy // p) + (xx // p)) % 2 == 0, 1.0, -1.0)
    else:
        th, period = float(rng.uniform(0, np.pi)), float(rng.uniform(2.5, 6.0))
        g = np.sin(2 * np.pi * (xx * np.cos(th) + yy * np.sin(th)) / period + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.3:
            g = np.sign(g)
    return _clip(flat + (amp * g)[..., None])


def benign(ref: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """The benign kinds of the module doc (the mild decodes are yielded by the caller)."""
    yield "webp", _codec(ref, "WEBP", int(rng.integers(5, 41)))
    if features.check("avif"):
        yield "avif", _codec(ref, "AVIF", int(rng.integers(10, 51)))
    d = rng.uniform(0.3, 0.7, 2)
    yield "shift", _clip(ndimage.shift(ref, (d[0], d[1], 0), order=3, mode="reflect"))
    yield "noise", _clip(base + rng.normal(0, float(rng.uniform(0.01, 0.03)), base.shape))
    yield "blur", _blur(ref, float(rng.uniform(1.0, 2.0)))
    fine = dict(benign_fine(ref, base, rng))
    for k in ("grain", "jpeg420low", "rescale", "unsharp"):
        yield k, fine[k]


def planted(ref: np.ndarray, rng: np.random.Generator, source: Callable[[], np.ndarray],
            flat_ref: np.ndarray) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Every planted kind, each on its own mild decode; yields (kind, reference, output, mask). ``source()``
    returns a random other photo of the split; ``flat_ref`` is the photo's flattest crop (for ``grating_all``)."""
    full = np.ones(ref.shape[:2], bool)
    _, base = mild(ref, rng)
    yield ("text", ref, *text(base, rng))
    _, base = mild(ref, rng)
    yield ("object", ref, *inserted_object(base, source(), rng))
    _, base = mild(ref, rng)
    yield ("warp", ref, *warp(base, rng))
    _, base = mild(ref, rng)
    yield ("redrawn", ref, *redrawn(base, rng))
    _, base = mild(ref, rng)
    yield "texture_all", ref, texture_all(base, source(), rng), full
    _, base = mild(flat_ref, rng)
    yield "grating_all", flat_ref, grating_all(base, rng), full
