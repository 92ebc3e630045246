"""Cases of the ``photos-*`` splits (:mod:`benchmarks.planted.debian_photos` photos, :mod:`~.local_kinds` kinds).

Per crop of a photo (256 px, at a random place of the photo resampled to a short side of 1024 px): every benign
kind, the mild decodes (group ``faithful``) and every planted kind, each planted kind on its own mild decode.
``grating_all`` uses the flattest of 16 crops of the same photo as its reference. Deterministic in the split's
seed; needs the photos (``python -m benchmarks.planted.debian_photos``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from benchmarks.planted import debian_photos as D
from benchmarks.planted import local_kinds as K
from benchmarks.planted.cases import SIZE, Case


def _crop_at(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = int(rng.integers(0, h - SIZE + 1)), int(rng.integers(0, w - SIZE + 1))
    return np.ascontiguousarray(img[y:y + SIZE, x:x + SIZE])


def _flattest(img: np.ndarray, rng: np.random.Generator, n: int = 16) -> np.ndarray:
    """The crop with the least high-pass (sigma 2) luma energy among ``n`` random ones."""
    crops = [_crop_at(img, rng) for _ in range(n)]

    def detail(c: np.ndarray) -> float:
        y = c @ K.LUMA
        return float(np.mean((y - ndimage.gaussian_filter(y, 2.0)) ** 2))

    return min(crops, key=detail)


def build_photos(split: str) -> list[Case]:
    """All cases of a ``photos-*`` split, in a fixed order."""
    spec = D.PHOTO_SPLITS[split]
    names: list[str] = list(spec["photos"])  # type: ignore[call-overload]
    missing = D.missing_photos()
    if missing:
        raise FileNotFoundError(f"split {split}: photos missing under {D.photo_dir()} ({', '.join(missing)}); run "
                                "`python -m benchmarks.planted.debian_photos` (or set QA_PLANTED_PHOTOS)")
    photos = {n: D.load(n) for n in names}
    cases: list[Case] = []
    for pi, name in enumerate(names):
        img = photos[name]
        others = [n for n in names if n != name]
        for ci in range(int(spec["crops"])):  # type: ignore[call-overload]
            rng = np.random.default_rng(int(spec["seed"]) + 100 * pi + ci)  # type: ignore[call-overload]
            ref = _crop_at(img, rng)
            flat = _flattest(img, rng)
            none = np.zeros((SIZE, SIZE), bool)
            kind, base = K.mild(ref, rng)
            cases.append(Case(f"{name}-{ci}-{kind}", name, kind, "faithful", ref, base, none))
            for kind, out in K.benign(ref, base, rng):
                cases.append(Case(f"{name}-{ci}-{kind}", name, kind, "benign", ref, out, none))

            def source(rng: np.random.Generator = rng, others: list[str] = others) -> np.ndarray:
                return photos[others[int(rng.integers(len(others)))]]

            for kind, r, out, m in K.planted(ref, rng, source, flat):
                cases.append(Case(f"{name}-{ci}-{kind}", name, kind, "planted", r, out, m))
    return cases
