"""Cases: one reference item prepared for one decoder (pixels cropped to what the encoder needs), and its
samples once decoded (one per seed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qa.errors import BadImageError
from qa.imageio import load_image
from qa.metrics.base import ImageSample
from qa.refset.manifest import ReferenceItem


@dataclass
class Case:
    """A reference item ready to decode.

    ``pixels``: float32 (H, W, 3) in [0, 1], centre-cropped so H and W are multiples of the encoder's factor
    (``notes`` says so when a crop happened). ``error`` is set instead when the image could not be loaded.
    """

    case_id: str
    image_sha256: str
    caption: str
    file: str
    pixels: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""


def crop_to_multiple(pixels: np.ndarray, multiple: int) -> tuple[np.ndarray, str]:
    """Centre-crop (H, W, 3) so both sides are multiples of ``multiple``; returns pixels and a note ('' if none)."""
    if multiple <= 1:
        return pixels, ""
    h, w = pixels.shape[:2]
    nh, nw = h - h % multiple, w - w % multiple
    if nh == 0 or nw == 0:
        raise BadImageError(f"{w}x{h} is smaller than the encoder's factor {multiple}")
    if (nh, nw) == (h, w):
        return pixels, ""
    top, left = (h - nh) // 2, (w - nw) // 2
    return pixels[top : top + nh, left : left + nw], f"centre-cropped {w}x{h} -> {nw}x{nh} (multiple of {multiple})"


def changed_on_disk(item: ReferenceItem, actual: str, where: str = "") -> str:
    """The error of a case whose file's bytes (sha256 ``actual``) are no longer those the run recorded for it;
    ``where``: the host it was read on, for a worker of a cluster ('' locally)."""
    host = f" on {where}" if where else ""
    return (f"{item.id}: {item.file}{host} changed on disk since the run started (its bytes now have sha256 "
            f"{actual[:12]}..., "
            f"the run recorded {item.sha256[:12]}...): not scored, since its rows would be another image's under "
            "this image's hash; restore the file, or start a new run (`qa run`) on the set as it is now")


def load_case(item: ReferenceItem, multiple: int, where: str = "") -> Case:
    """Load one reference item as a :class:`Case`; never raises for a bad image (sets ``error``).

    A file whose bytes no longer have the sha256 recorded for it when the set was loaded (the run's start: a
    ``git pull`` or a regenerated set during a long run, or another copy on a worker host: ``where`` names the host
    in the error) is that case's error, never scored under the old hash."""
    case = Case(case_id=item.id, image_sha256=item.sha256, caption=item.caption, file=item.file)
    if item.problem:
        case.error = item.problem
        return case
    try:
        loaded = load_image(item.path)  # its sha256 is of the very bytes decoded
        if item.sha256 and loaded.sha256 != item.sha256:
            case.error = changed_on_disk(item, loaded.sha256, where)
            return case
        pixels, note = crop_to_multiple(loaded.pixels, multiple)
    except BadImageError as exc:
        case.error = f"{item.id}: {exc}"
        return case
    case.pixels = np.ascontiguousarray(pixels)
    case.notes = list(loaded.notes) + ([note] if note else [])
    return case


@dataclass
class CaseSamples:
    """A decoded case's samples by seed, its first seed, and the seeds whose every per-seed input equals the first
    seed's (their rows are copies of the first seed's)."""

    samples: dict[int, ImageSample]
    first_seed: int
    same: set[int]
    #: the case's image (the reference, also on a track without a pixel-aligned one)
    pixels: np.ndarray

    @classmethod
    def of(cls, samples: dict[int, ImageSample], pixels: np.ndarray) -> CaseSamples:
        """The samples of a case by seed (the first key is the first seed) and the case's image."""
        first = next(iter(samples))
        same = {seed for seed, sample in samples.items() if seed != first and same_inputs(sample, samples[first])}
        return cls(samples, first, same, pixels)

    @property
    def unique(self) -> list[ImageSample]:
        """The samples the metrics score (the first seed's and every seed that differs from it)."""
        return [sample for seed, sample in self.samples.items() if seed not in self.same]


def same_inputs(a: ImageSample, b: ImageSample) -> bool:
    """True when two seeds' samples of one case hold equal arrays in every per-seed field a metric may read
    (output, latent, re-encoded latent, baseline, re-decoded output); the shared fields are the same objects."""
    for name in ("output", "latent", "reencoded", "baseline", "redecoded"):
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None):
            return False
        if x is not None and not (x is y or (x.shape == y.shape and np.array_equal(x, y))):
            return False
    return True
