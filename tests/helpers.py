"""Small reference sets and test decoders shared by tests of several parts (engine, gate, report, session, generate, ray)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.hashing import sha256_file
from qa.refset.manifest import write_manifest


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
