"""Benign changes and planted word replacements on a text reference set: how often ``text_invented`` stays 0.

Run ``python -m benchmarks.text_planted [--set reference_sets/text]``. For every tile of the set it scores the
reference against: itself; a Gaussian blur (sigma 0.6 px); JPEG quality 50 (4:2:0); a shift by 0.5 px right and
down (cubic spline); and a planted word: the longest alphabetic word the reference's OCR reads with confidence
replaced by another word of the same length (:func:`plant_word`: the word's box filled with the colour around
it, the new word drawn in Pillow's bundled font over the same box, in the old word's ink colour). It prints a
table: per change, the tiles with ``text_invented`` 0, the mean ``text_invented`` and ``text_cer``, and for the
planted words how many were found and how much of the map lies on the planted box.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from qa.imageio import load_image
from qa.metrics.base import ImageSample
from qa.metrics.text import ocr
from qa.metrics.text.compare import legible
from qa.metrics.text.metrics import TextCER, TextInvented
from qa.refset.manifest import load_reference_set

#: replacement words by length (capitalised like the word they replace)
POOL = ("at on up go by", "cat dog sun map red box", "fish lamp gold wind boat", "horse plant cloud water brick",
        "garden winter planet castle bridge", "kitchen blanket harvest morning", "mountain sandwich elephant notebook",
        "telephone butterfly chocolate", "watermelon basketball thundering")
WORDS = {len(p.split()[0]): p.split() for p in POOL}


def blur(img: np.ndarray) -> np.ndarray:
    """Gaussian blur, sigma 0.6 px, per channel (reflect edges)."""
    return np.stack([ndimage.gaussian_filter(img[..., c], 0.6, mode="reflect") for c in range(3)], -1)


def jpeg(img: np.ndarray, quality: int = 50) -> np.ndarray:
    """JPEG round trip at ``quality`` (Pillow, 4:2:0 chroma subsampling)."""
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.floor(img * 255 + 0.5), 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return np.asarray(out.convert("RGB"), np.float32) / 255.0


def shift(img: np.ndarray, dx: float = 0.5, dy: float = 0.5) -> np.ndarray:
    """Content moved by (dx, dy) px (cubic spline interpolation, edges repeated)."""
    return np.stack([ndimage.shift(img[..., c], (dy, dx), order=3, mode="nearest") for c in range(3)], -1)


BENIGN: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x, "blur sigma 0.6": blur, "JPEG q50": jpeg, "shift 0.5 px": shift}


@dataclass(frozen=True)
class Planted:
    """A planted replacement: the image, the replaced word's box (x0, y0, x1, y1), the old and the new word."""

    image: np.ndarray
    box: tuple[int, int, int, int]
    old: str
    new: str


def _replacement(word: str) -> str:
    """A pool word of ``word``'s length that differs from it in more than half of the positions, in its case."""
    for cand in WORDS.get(len(word), []):
        if sum(a != b for a, b in zip(cand, word.lower(), strict=True)) > len(word) // 2:
            return cand.upper() if word.isupper() else cand.capitalize() if word[0].isupper() else cand
    raise ValueError(f"no replacement of length {len(word)} for {word!r}")


def plant_word(image: np.ndarray) -> Planted | None:
    """Replace the longest alphabetic legible word (3-10 letters) of ``image``'s reading; None if there is none."""
    words = [w for w in ocr.read_words(image) if legible(w) and w.text.isalpha() and 3 <= len(w.text) <= 10]
    if not words:
        return None
    word = max(words, key=lambda w: (len(w.text), -w.box[1], -w.box[0]))
    new = _replacement(word.text)
    x0, y0, x1, y1 = word.box
    h, w = image.shape[:2]
    m = max(1, (y1 - y0) // 6)
    x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    patch = image[y0:y1, x0:x1].reshape(-1, 3)
    ring = np.concatenate([image[max(0, y0 - 2):y0, x0:x1].reshape(-1, 3), image[y1:y1 + 2, x0:x1].reshape(-1, 3),
                           image[y0:y1, max(0, x0 - 2):x0].reshape(-1, 3), image[y0:y1, x1:x1 + 2].reshape(-1, 3)])
    ground = np.median(ring if len(ring) else patch, axis=0)
    ink = patch[np.argmax(np.abs(patch - ground).sum(axis=1))]
    # the new word drawn large, cropped to its ink, and scaled onto the old word's box
    font = ImageFont.load_default(size=96)
    canvas = Image.new("L", (96 * len(new), 160), 0)
    ImageDraw.Draw(canvas).text((8, 8), new, font=font, fill=255)
    bbox = canvas.getbbox()
    assert bbox is not None
    bx0, by0, bx1, by1 = word.box
    glyphs = canvas.crop(bbox).resize((max(1, bx1 - bx0), max(1, by1 - by0)), Image.Resampling.LANCZOS)
    alpha = np.asarray(glyphs, np.float32)[..., None] / 255.0
    out = image.copy()
    out[y0:y1, x0:x1] = ground
    out[by0:by1, bx0:bx1] = out[by0:by1, bx0:bx1] * (1 - alpha) + ink * alpha
    return Planted(out.astype(np.float32), word.box, word.text, new)


def map_share_on(box: tuple[int, int, int, int], mp: np.ndarray, grow: int = 3) -> float:
    """Share of a map's total inside ``box`` grown by ``grow`` px (1 when the map is empty)."""
    total = float(mp.sum())
    x0, y0, x1, y1 = box
    return float(mp[max(0, y0 - grow):y1 + grow, max(0, x0 - grow):x1 + grow].sum()) / total if total else 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="reference_sets/text", help="a reference set (default %(default)s)")
    args = parser.parse_args()
    if ocr.unavailable_reason():
        print(ocr.unavailable_reason())
        return 2
    refset = load_reference_set(args.set)
    cer, inv = TextCER(), TextInvented()
    refs = {i.id: load_image(i.path).pixels for i in refset.good}
    t0 = time.perf_counter()
    print(f"{len(refs)} tiles of {args.set}")
    print("| change | text_invented = 0 | mean text_invented | mean text_cer |\n|---|---|---|---|")
    for name, change in BENIGN.items():
        values = [(inv.compute(s).value, cer.compute(s).value)
                  for k, ref in refs.items() for s in [ImageSample(k, change(ref).astype(np.float32), ref)]]
        zeros = sum(v == 0 for v, _ in values)
        print(f"| {name} | {zeros}/{len(values)} | {np.mean([v for v, _ in values]):.4f} | "
              f"{np.mean([c for _, c in values]):.4f} |")
    found, shares, lines = 0, [], []
    for k, ref in refs.items():
        planted = plant_word(ref)
        if planted is None:
            continue
        res = inv.compute(ImageSample(k, planted.image, ref))
        assert res.map is not None
        share = map_share_on(planted.box, res.map) if res.value > 0 else float("nan")
        found += res.value > 0
        shares += [share] if res.value > 0 else []
        lines.append(f"  {k}: {planted.old} -> {planted.new}: text_invented {res.value:.3f}, "
                     f"share of the map on the word {share:.2f}")
    print(f"| planted word (same length) | found on {found}/{len(lines)} | share of the map on the planted word: "
          f"median {np.median(shares) if shares else float('nan'):.2f}, least "
          f"{min(shares) if shares else float('nan'):.2f} | |")
    print("\n".join(lines))
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
