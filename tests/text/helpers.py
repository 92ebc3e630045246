"""Text images for the text-metric tests, drawn with the font Pillow ships (no system font needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from qa.hashing import sha256_file
from qa.metrics.text import ocr
from qa.refset.manifest import write_manifest

#: skip marker for tests that need the OCR engine: the reason says how to install it
needs_ocr = pytest.mark.skipif(ocr.unavailable_reason() is not None, reason=str(ocr.unavailable_reason()))


def sign(lines: tuple[str, ...], size: int = 28, side: tuple[int, int] = (256, 128),
         ground: tuple[int, int, int] = (250, 250, 245), ink: tuple[int, int, int] = (20, 20, 20)) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1]: ``lines`` left-aligned at (16, 16), baselines 1.4 * size apart."""
    img = Image.new("RGB", side, ground)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    for k, line in enumerate(lines):
        draw.text((16, 16 + k * round(1.4 * size)), line, font=font, fill=ink)
    return np.asarray(img, np.float32) / 255.0


def text_box(lines: tuple[str, ...], line: int, word: int, size: int = 28) -> tuple[int, int, int, int]:
    """The ink box (x0, y0, x1, y1) of word ``word`` of line ``line`` as :func:`sign` draws it."""
    font = ImageFont.load_default(size=size)
    parts = lines[line].split(" ")
    x = 16 + font.getlength(" ".join(parts[:word]) + (" " if word else ""))
    x0, y0, x1, y1 = font.getbbox(parts[word])
    top = 16 + line * round(1.4 * size)
    return int(x + x0), top + int(y0), int(x + x1) + 1, top + int(y1) + 1


def write_set(root: Path, images: dict[str, np.ndarray], texts: dict[str, str] | None) -> Path:
    """A reference set of ``images`` (id -> float image); with ``texts`` a text set (manifest ``text`` column)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for key, img in images.items():
        path = root / f"{key}.png"
        Image.fromarray(np.clip(np.floor(img * 255 + 0.5), 0, 255).astype(np.uint8)).save(path)
        row = {"id": key, "file": path.name, "caption": f"a sign {key}", "licence": "test", "source": "test",
               "sha256": sha256_file(path)}
        if texts is not None:
            row["text"] = texts.get(key, "")
        rows.append(row)
    write_manifest(root, rows, text_set=texts is not None)
    return root
