"""Small reference sets, test decoders and text images shared by tests of several parts (engine, gate, report,
session, generate, ray, metrics)."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image, ImageDraw, ImageFont

from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.hashing import sha256_file
from qa.metrics.text import ocr
from qa.refset.manifest import write_manifest


def seeded_noise(out: torch.Tensor, case_ids: list[str], seed: int) -> torch.Tensor:
    """Standard normal noise of ``out``'s (N, ...) shape, drawn per case from a generator seeded by ``seed`` and the
    case id: a case's noise does not depend on its batch mates (the engine checks that of every decoder)."""
    return torch.stack([torch.randn(out.shape[1:], dtype=out.dtype,
                                    generator=torch.Generator().manual_seed(zlib.crc32(f"{seed}:{c}".encode())))
                        for c in case_ids])


def make_refset(root: Path, n: int = 6, side: int = 64, extra: list[dict[str, str]] | None = None) -> Path:
    """Write ``n`` side x side tiles of scikit-image's astronaut and coffee photos plus a manifest."""
    root.mkdir(parents=True, exist_ok=True)
    photos = [skimage.data.astronaut(), skimage.data.coffee()]
    items = []
    for i in range(n):
        img = photos[i % 2]
        y, x = 40 + 23 * i, 60 + 31 * i
        tile = img[y : y + side, x : x + side]
        path = root / f"tile{i:02d}.png"
        Image.fromarray(np.ascontiguousarray(tile)).save(path)
        items.append({"id": f"tile{i:02d}", "file": path.name, "caption": f"photo tile {i}", "licence": "test",
                      "source": "skimage", "sha256": sha256_file(path)})
    write_manifest(root, items + (extra or []))
    return root


class SlowBicubic(BicubicDecoder):
    """Bicubic that sleeps per batch (to be killed mid-run)."""

    family = "slow-bicubic"
    max_batch = 1

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        time.sleep(0.4)
        return super().decode(batch, seed)


class RaisingDecoder(BicubicDecoder):
    """Bicubic that raises on the case id ``tile02``."""

    family = "raising"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        if "tile02" in batch.case_ids:
            raise RuntimeError("planted failure on tile02")
        return super().decode(batch, seed)


class NaNDecoder(BicubicDecoder):
    """Bicubic that returns NaN pixels for ``tile03``."""

    family = "nan"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        for i, cid in enumerate(batch.case_ids):
            if cid == "tile03":
                out[i, :, :4, :4] = float("nan")
        return out


def register_test_decoders() -> None:
    """Register the test decoders (idempotent)."""
    from qa.decoders.catalog import DECODERS

    for name, cls in (("slow-bicubic", SlowBicubic), ("raising", RaisingDecoder), ("nan", NaNDecoder)):
        if name not in DECODERS:
            DECODERS.register(name, cls)


# text images for the text-metric tests, drawn with the font Pillow ships (no system font needed)
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
