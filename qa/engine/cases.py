"""Cases: one reference item prepared for one decoder (pixels cropped to what the encoder needs)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qa.errors import BadImageError
from qa.imageio import load_image
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


def load_case(item: ReferenceItem, multiple: int) -> Case:
    """Load one reference item as a :class:`Case`; never raises for a bad image (sets ``error``)."""
    case = Case(case_id=item.id, image_sha256=item.sha256, caption=item.caption, file=item.file)
    if item.problem:
        case.error = item.problem
        return case
    try:
        loaded = load_image(item.path)
        pixels, note = crop_to_multiple(loaded.pixels, multiple)
    except BadImageError as exc:
        case.error = f"{item.id}: {exc}"
        return case
    case.pixels = np.ascontiguousarray(pixels)
    case.notes = list(loaded.notes) + ([note] if note else [])
    return case
