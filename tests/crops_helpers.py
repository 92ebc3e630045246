"""A decoder that invents one small thing in one place: the identity plus a fine grating in one 64 x 64 area.

Used by the tests of the full-resolution pixels a run keeps (engine) and of the crops the report shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

from qa.decoders.base import DecodeBatch
from qa.decoders.simple import IdentityDecoder
from qa.hashing import sha256_file
from qa.refset.manifest import write_manifest

#: side of the planted area, pixels
PLANT_SIDE = 64
#: period of the planted grating, pixels (vertical bars: 2 columns up, 2 down; zero mean over a period)
PLANT_PERIOD = 4


def plant_origin(width: int, height: int) -> tuple[int, int]:
    """(x, y) of the planted area's top-left corner in an image of this size: on the astronaut photo, a textured
    area of mid-tones (every channel in [0.12, 0.88] at 2048 x 1280), so +-0.1 bars do not clip."""
    return min(int(0.875 * width) // 2 * 2, width - PLANT_SIDE), min(int(0.35 * height) // 2 * 2, height - PLANT_SIDE)


def grating(side: int = PLANT_SIDE, period: int = PLANT_PERIOD) -> np.ndarray:
    """(side, side) vertical bars of +1 and -1, ``period // 2`` columns each."""
    bars = np.where(np.arange(side) % period < period // 2, 1.0, -1.0)
    return np.broadcast_to(bars, (side, side)).astype(np.float32)


class PlantedIdentity(IdentityDecoder):
    """The identity, plus a grating of amplitude ``plant`` (luma units, 0 = none) in one 64 x 64 area at
    :func:`plant_origin`: a small, local invention."""

    family = "planted"

    def __init__(self, name: str | None = None, device: str = "cpu", plant: float = 0.0) -> None:
        super().__init__(name, device, plant=float(plant))
        self.plant = float(plant)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        if self.plant > 0:
            h, w = out.shape[-2:]
            x0, y0 = plant_origin(w, h)
            g = torch.from_numpy(grating()) * self.plant
            out[:, :, y0:y0 + PLANT_SIDE, x0:x0 + PLANT_SIDE] += g.to(out.dtype)
        return out.clamp(0.0, 1.0)


def photo_refset(root: Path, width: int, height: int, n: int = 1) -> Path:
    """``n`` photos of ``width`` x ``height`` (scikit-image's astronaut and coffee, bicubic-resized: the largest
    real photos shipped here are 512 px) and a manifest."""
    root.mkdir(parents=True, exist_ok=True)
    photos = [skimage.data.astronaut(), skimage.data.coffee()]
    items = []
    for i in range(n):
        img = Image.fromarray(photos[i % 2]).resize((width, height), Image.Resampling.BICUBIC)
        path = root / f"photo{i:02d}.png"
        img.save(path)
        items.append({"id": f"photo{i:02d}", "file": path.name, "caption": f"photo {i}", "licence": "test",
                      "source": "skimage", "sha256": sha256_file(path)})
    write_manifest(root, items)
    return root
