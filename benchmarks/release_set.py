"""A reference set at release resolution for the per-case benchmarks: four scikit-image photos (astronaut,
chelsea, coffee, rocket) bicubic-resized to ``--side`` x ``--side`` (default 2048), 8-bit PNGs and a
``manifest.csv`` with their SHA-256, written to ``--out`` (a scratch folder; nothing here is committed).

    PYTHONPATH=. .venv/bin/python -m benchmarks.release_set --out /tmp/release2048 [--side 2048]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as tf
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def build(out: Path, side: int = 2048) -> Path:
    """Write the set to ``out`` (created) and return it."""
    from skimage import data

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in PHOTOS:
        img = torch.from_numpy(getattr(data, name)()[..., :3].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        big = tf.interpolate(img, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1)
        path = out / f"{name}.png"
        Image.fromarray((big[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)).save(path)
        rows.append({"id": name, "file": path.name, "caption": f"a photo ({name})", "licence": "scikit-image data",
                     "source": f"skimage.data.{name}, bicubic to {side} px",
                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--side", type=int, default=2048)
    args = ap.parse_args(argv)
    print(build(args.out, args.side))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
