"""Thumbnails for the image grid: each distinct image embedded once, losslessly recompressed, within a budget.

The store's thumbnails are PNGs (longest side 160 px). The grid refers to them by CSS class; each distinct image
is one ``background-image`` rule, so an output identical to its reference (``identity``) costs nothing extra.
Each image is re-encoded as lossless WebP when that is smaller (same pixels; about a fifth smaller on photos).
If the images would still exceed :data:`IMAGE_BUDGET` bytes of base64, all of them are shrunk by one common
factor (area resampling) until they fit, and the grid says so: the file stays small with any number of decoders.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math

import numpy as np
from PIL import Image, UnidentifiedImageError

#: most bytes of base64 image data one report embeds (plotly.js is ~4.8 MB; the file target is < 15 MB)
IMAGE_BUDGET = 7_000_000
#: PNG file signature: anything else in the images table is not embedded
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: smallest side images are shrunk to when over budget, in pixels
MIN_SIDE = 48
#: colour of the map overlay (alpha = the map's brightness times a gain)
OVERLAY_RGB = (255, 40, 40)
#: percentile of all map pixels in a report that the overlay shows fully opaque
OVERLAY_PERCENTILE = 99.5


def _decode(png: bytes) -> Image.Image | None:
    if not png.startswith(PNG_MAGIC):
        return None
    try:
        with Image.open(io.BytesIO(png)) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError, UnidentifiedImageError):
        return None


def overlay_gain(pngs: list[bytes], percentile: float = OVERLAY_PERCENTILE) -> float:
    """The gain that maps the ``percentile`` of all map pixels of ``pngs`` to full opacity (1.0 if all dark).

    One gain for every decoder's map, so the overlays stay comparable across decoders.
    """
    values = []
    for png in pngs:
        img = _decode(png)
        if img is not None:
            values.append(np.asarray(img.convert("L"), dtype=np.float32).ravel())
    if not values:
        return 1.0
    level = float(np.percentile(np.concatenate(values), percentile))
    return 255.0 / level if level > 0 else 1.0


def _overlay(img: Image.Image, gain: float = 1.0) -> Image.Image:
    """A grayscale map as red with alpha = brightness x ``gain`` (clipped to 255)."""
    alpha = img.convert("L")
    if gain != 1.0:
        alpha = alpha.point(lambda v: min(255, round(v * gain)))
    rgba = Image.new("RGBA", alpha.size, (*OVERLAY_RGB, 0))
    rgba.putalpha(alpha)
    return rgba


def encode(img: Image.Image) -> tuple[str, bytes]:
    """(mime type, bytes): lossless WebP when smaller than PNG, else PNG. Pixels are unchanged either way."""
    png = io.BytesIO()
    img.save(png, format="PNG", optimize=True)
    best = ("image/png", png.getvalue())
    try:
        webp = io.BytesIO()
        img.save(webp, format="WEBP", lossless=True, method=2, quality=50, exact=True)
        if len(webp.getvalue()) < len(best[1]):
            best = ("image/webp", webp.getvalue())
    except (OSError, KeyError, ValueError):  # Pillow built without WebP: PNG it is
        pass
    return best


class ImagePool:
    """Distinct images of one report section, addressed by CSS class names ``t0``, ``t1``, ... (``prefix``
    replaces ``t``: two pools on one page need different prefixes)."""

    def __init__(self, budget: int = IMAGE_BUDGET, prefix: str = "t") -> None:
        self.budget = budget
        self.prefix = prefix
        self._keys: dict[tuple[str, bool], str] = {}
        self._images: list[Image.Image] = []
        self.scale = 1.0
        self.bytes = 0

    def add(self, png: bytes | None, overlay: bool = False, gain: float = 1.0) -> str | None:
        """The class name of ``png`` (as a red overlay with ``gain`` if ``overlay``), or None when it is not a
        readable PNG."""
        if not png:
            return None
        key = (hashlib.sha256(png).hexdigest() + (f"/{gain:.6g}" if overlay else ""), overlay)
        if key in self._keys:
            return self._keys[key]
        img = _decode(png)
        if img is None:
            return None
        self._images.append(_overlay(img, gain) if overlay else img.convert("RGBA" if img.mode in ("RGBA", "LA", "P")
                                                                        else "RGB"))
        self._keys[key] = f"{self.prefix}{len(self._images) - 1}"
        return self._keys[key]

    def __len__(self) -> int:
        return len(self._images)

    def _encode_all(self, scale: float) -> list[tuple[str, bytes]]:
        out = []
        for img in self._images:
            if scale < 1.0:
                side = max(MIN_SIDE, round(max(img.size) * scale))
                img = img.copy()
                img.thumbnail((side, side), Image.Resampling.BOX)
            out.append(encode(img))
        return out

    def css(self) -> str:
        """One ``background-image`` rule per image, shrinking all of them if over the budget."""
        encoded = self._encode_all(1.0)
        total = sum(math.ceil(len(b) / 3) * 4 for _, b in encoded)
        for _ in range(5):
            if total <= self.budget:
                break
            self.scale *= math.sqrt(self.budget / total) * 0.95  # bytes scale about with the area
            encoded = self._encode_all(self.scale)
            total = sum(math.ceil(len(b) / 3) * 4 for _, b in encoded)
        self.bytes = total
        return "".join(f".{self.prefix}{i}{{background-image:url(data:{mime};base64,{base64.b64encode(data).decode('ascii')})}}"
                       for i, (mime, data) in enumerate(encoded))
