"""Training data for the embedded zoo: natural photographs from Debian's ``opencv-doc``.

Nothing here touches the network or the file system at import time.  :func:`ensure_opencv_doc`
obtains the .deb (``apt-get download``) and is called only by the training scripts.

The reference/test set of the project is built from scikit-image, scikit-learn and matplotlib
photographs: none of those are ever used here for training (the smoke tests may generate crops
from ``skimage.data`` through :func:`images_from_arrays`, but those runs never produce shipped weights).
"""
from __future__ import annotations

import csv
import glob
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SOURCE = "Debian opencv-doc 4.6.0 examples/data"
DEB_ROOT = Path(os.environ.get("QA_OPENCV_DOC", "/tmp/ocv"))
DATA_SUBDIR = "usr/share/doc/opencv-doc/examples/data"
LICENCE = ("unstated (no per-image statement; Debian copyright of the package: "
           "Apache-2.0 AND BSD-3-Clause)")

#: Curated natural colour photographs (no logos, charts, text, chessboards, renders, paintings,
#: near-duplicate stereo/second views, or tiny images).
TRAIN_FILES: tuple[str, ...] = (
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg",
    "building.jpg", "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg",
    "graf1.png", "left.jpg", "leuvenA.jpg", "licenseplate_motion.jpg", "orange.jpg",
    "rubberwhale1.png", "smarties.png", "stuff.jpg",
)
#: Held-out photographs (split by source image), used only for evaluation in the model cards.
HELDOUT_FILES: tuple[str, ...] = ("home.jpg", "squirrel_cls.jpg", "messi5.jpg")


@dataclass(frozen=True)
class PhotoRecord:
    """One training photograph and its provenance."""

    file: str
    width: int
    height: int
    licence: str = LICENCE
    source: str = SOURCE


def data_dir(root: Path | None = None) -> Path:
    """Directory holding the extracted opencv-doc sample data."""
    return Path(root or DEB_ROOT) / DATA_SUBDIR


def ensure_opencv_doc(root: Path | None = None) -> Path:
    """Return the extracted data dir, downloading and extracting ``opencv-doc`` if missing.

    Uses ``apt-get download`` (the ordinary Debian client) and ``dpkg-deb -x``.  Training only.
    """
    root = Path(root or DEB_ROOT)
    d = data_dir(root)
    if (d / TRAIN_FILES[0]).exists():
        return d
    root.mkdir(parents=True, exist_ok=True)
    work = root.parent
    subprocess.run(["apt-get", "download", "opencv-doc"], cwd=work, check=True)
    debs = sorted(glob.glob(str(work / "opencv-doc_*.deb")))
    if not debs:
        raise RuntimeError(f"apt-get download opencv-doc produced no .deb in {work}")
    subprocess.run(["dpkg-deb", "-x", debs[-1], str(root)], check=True)
    if not (d / TRAIN_FILES[0]).exists():
        raise RuntimeError(f"opencv-doc extracted but {d / TRAIN_FILES[0]} is missing")
    return d


def load_rgb(path: Path) -> np.ndarray:
    """Load an image as uint8 RGB ``HxWx3``."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_photos(files: Sequence[str], root: Path | None = None) -> tuple[list[np.ndarray], list[PhotoRecord]]:
    """Load the named opencv-doc photos; returns arrays and provenance records."""
    d = data_dir(root)
    arrays, recs = [], []
    for f in files:
        a = load_rgb(d / f)
        arrays.append(a)
        recs.append(PhotoRecord(f, a.shape[1], a.shape[0]))
    return arrays, recs


def images_from_arrays(arrays: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Normalise explicit arrays (gray or RGB, uint8) to uint8 RGB; for tests/CI without opencv-doc."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        out.append(np.ascontiguousarray(a[..., :3]).astype(np.uint8))
    return out


def _rescaled(img: np.ndarray, scale: float) -> np.ndarray:
    from PIL import Image

    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def random_crops(images: Sequence[np.ndarray], n: int, size: int, seed: int,
                 scales: Sequence[float] = (1.0, 0.75, 0.5)) -> torch.Tensor:
    """``n`` seeded random crops (``uint8 [n,3,size,size]``) with random rescale and flips.

    Images are first rescaled by each of ``scales`` (to cover several pixel scales); a pyramid level
    smaller than ``size`` is skipped.  Sampling is uniform over images, then over positions.
    """
    rng = np.random.default_rng(seed)
    pyr = [_rescaled(im, s) for im in images for s in scales]
    pyr = [p for p in pyr if p.shape[0] >= size and p.shape[1] >= size]
    if not pyr:
        raise ValueError(f"no image is at least {size}x{size}")
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        p = pyr[rng.integers(len(pyr))]
        y = rng.integers(p.shape[0] - size + 1)
        x = rng.integers(p.shape[1] - size + 1)
        c = p[y:y + size, x:x + size]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        out[i] = c
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def write_training_tsv(path: Path, records: Sequence[PhotoRecord], split: str = "train") -> None:
    """Write the training list with licences (tab-separated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["file", "split", "width", "height", "licence", "source"])
        for r in records:
            w.writerow([r.file, split, r.width, r.height, r.licence, r.source])


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N,3,H,W]`` -> float in [-1, 1]."""
    return x.float().div(127.5).sub(1.0)
