"""One sign convention for every output of a gate: **worse by** (metric units; positive = worse, negative =
better), and the complete list of the images a worst-images check names.

A check keeps ``diff_mean``/``diff_ci`` as goodness (positive = better) for its own arithmetic; what a person
reads (text, Markdown, JSON, JUnit, ``qa status``, the report) is :func:`worse_by` of it. A worst-images check's
one-line message names the first :data:`FOLD_AT` images; every format then carries every image (folded, never
dropped): text and pytest as indented lines, Markdown in a ``<details>`` table, JSON as ``images``, JUnit as one
``qa.image`` property per image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: images named in a worst-images check's one-line message (the full list follows it in every format)
FOLD_AT = 3


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and not math.isnan(float(x))


def worse_by(check: Mapping[str, Any]) -> tuple[float | None, tuple[float, float] | None]:
    """(worse by, its interval or None) of a check given as a dict (:meth:`CheckResult.to_dict` or a stored gate's
    check). Rows stored before this convention have no ``worse_by``: a baseline check's ``diff_mean`` was
    goodness (negated here), a worst-images check's was already the loss."""
    if "worse_by" in check:
        ci = check.get("worse_by_ci")
        return (check["worse_by"] if _finite(check["worse_by"]) else None,
                (float(ci[0]), float(ci[1])) if isinstance(ci, list | tuple) and len(ci) == 2 else None)
    d, ci = check.get("diff_mean"), check.get("diff_ci")
    if d is None or not _finite(d):
        return None, None
    if check.get("kind") == "worst_images":
        return float(d), None
    return -float(d), ((-float(ci[1]), -float(ci[0])) if isinstance(ci, list | tuple) and len(ci) == 2 else None)


def fmt(x: Any) -> str:
    """A number with 4 significant digits ("n/a" when absent)."""
    return f"{float(x) + 0.0:.4g}" if _finite(x) else "n/a"  # + 0.0: never "-0"


def image_text(image: Mapping[str, Any]) -> str:
    """"rocket-nose 0.0149 -> 0.0318 (worse by 0.0169 > allowed 0.0072)": one image of a worst-images check."""
    return (f"{image.get('case')} {fmt(image.get('baseline'))} -> {fmt(image.get('candidate'))} "
            f"(worse by {fmt(image.get('worse_by'))} > allowed {fmt(image.get('allowed'))})")


def image_lines(images: Sequence[Mapping[str, Any]], indent: str = "    ") -> list[str]:
    """Every image of a worst-images check, one line each, numbered (empty when the message named them all)."""
    if len(images) <= FOLD_AT:
        return []
    return [f"{indent}image {i + 1}/{len(images)}: {image_text(im)}" for i, im in enumerate(images)]
