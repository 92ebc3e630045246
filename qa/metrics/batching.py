"""How per-image metrics batch their pairs in ``prepare``: which devices batch, and how many pixels go in one call.

The engine hands each metric's ``prepare`` the samples of a scoring group (:mod:`qa.engine.groups`: a case's
seeds on a CPU, many cases of one size elsewhere); a metric that batches cuts its pairs into calls of one image
size with :func:`by_size`. The invented-detail analysis batches on every device (with its own, smaller, CPU
cap); the SSIM family, PSNR and LPIPS only where :func:`batches_on` says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from qa.metrics.base import ImageSample, all_finite

#: images of one size computed together, at most this many pixels per image slot of a torch call (bounds device
#: memory: the SSIM family's five moment planes of a pair's RGB channels are 60 bytes a pixel, so an 8 Mpx slot
#: of two 2048 px pairs needs about 1 GB)
BATCH_PIXELS = 8 * 1024 * 1024

Item = TypeVar("Item", bound=tuple)


def by_size(items: list[Item], max_pixels: int = BATCH_PIXELS) -> list[list[Item]]:
    """Tuples of (H, W, ...) arrays grouped by the first array's shape, each group cut to at most ``max_pixels``
    pixels per image slot (at least one item a group); the order kept within a shape."""
    groups: dict[tuple[int, ...], list[Item]] = {}
    for it in items:
        groups.setdefault(tuple(np.shape(it[0])), []).append(it)
    out: list[list[Item]] = []
    for shape, members in groups.items():
        per = max(1, max_pixels // max(1, int(shape[0]) * int(shape[1])))
        out.extend(members[i : i + per] for i in range(0, len(members), per))
    return out


def batches_on(device: str | torch.device) -> bool:
    """Whether the SSIM family, PSNR and LPIPS batch their pairs on ``device``: everywhere but a CPU, where a pair
    at a time is as fast (the compiled SSIM kernels split each image over the threads already; PSNR runs in
    numpy) and a batch only adds a stacked copy of the images."""
    return torch.device(device).type != "cpu"


def _valid(*arrays: np.ndarray | None) -> bool:
    """All present, (H, W, 3) of one size, at least 2 x 2 px and finite: worth batching (no batching metric
    takes a side of 1 px; the rest get their answer or their error in compute)."""
    present = [a for a in arrays if a is not None]
    if len(present) < len(arrays):
        return False
    shapes = {np.shape(a) for a in present}
    shape = next(iter(shapes))
    return (len(shapes) == 1 and len(shape) == 3 and shape[2] == 3 and min(shape[:2]) >= 2
            and all(all_finite(a) for a in present))


def sample_pairs(samples: list[ImageSample], first: str, second: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The valid ``(sample.<first>, sample.<second>)`` pairs of ``samples`` (e.g. output and reference): both
    present, (H, W, 3) of one size, at least 2 x 2 px, finite."""
    for s in samples:
        a, b = getattr(s, first), getattr(s, second)
        if _valid(a, b):
            yield a, b


class ScopedValues:
    """Values of pairs a metric computed together in ``prepare``, served to its ``compute`` while the scope (the
    samples list the engine passed) lasts, by the arrays' identity: the arrays are held, so an id names one
    array until the next scope; a pair not computed in the scope is a miss (``compute`` works it out alone)."""

    def __init__(self) -> None:
        self._scope: int | None = None
        self._held: list[object] = []
        self._values: dict[tuple[int, int], Any] = {}

    def enter(self, scope: object) -> None:
        """Start the scope ``scope`` (the same object again keeps what it holds; another drops it)."""
        if self._scope != id(scope):
            self._scope, self._held, self._values = id(scope), [scope], {}

    def put(self, a: np.ndarray, b: np.ndarray, value: Any) -> None:
        """Keep ``value`` for the pair (``a``, ``b``) of the current scope."""
        self._held += [a, b]
        self._values[(id(a), id(b))] = value

    def get(self, a: np.ndarray, b: np.ndarray) -> Any | None:
        """The value kept for (``a``, ``b``), or None."""
        return self._values.get((id(a), id(b)))
