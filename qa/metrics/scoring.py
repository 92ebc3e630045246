"""Scoring one metric on one sample: the one place that turns what a metric does into a row's value, status and
detail, for ``qa run`` (the engine's shards) and ``qa score`` alike.

* ``missing``: the metric cannot run here (``unavailable``: missing weights, with the command that fixes it), a
  declared need of the sample is unmet, or the metric raised :class:`~qa.metrics.base.NotApplicable`; the detail
  starts with "not applicable" for the last two (gates and reports recognise it);
* ``error``: the metric raised, or returned NaN: "CASE: Type: message" or "CASE: metric returned NaN". A number
  that could not be computed is never stored as a number;
* ``ok``: a finite or infinite value (PSNR of identical images is +inf), the metric's detail and its map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from qa.metrics.base import ImageMetric, ImageSample, NotApplicable, not_applicable_text

Status = Literal["ok", "missing", "error"]


@dataclass(frozen=True)
class Scored:
    """One metric's answer for one sample. ``value`` None unless ``status`` is ``ok``; ``map``: the metric's
    (H, W) map, when it made one; ``extra``: its named side numbers (e.g. where its strongest region lies)."""

    value: float | None
    status: Status
    detail: str
    map: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)


def score_sample(metric: ImageMetric, sample: ImageSample, unavailable: str | None = None) -> Scored:
    """Score ``sample`` with ``metric``; never raises for what the metric does. ``unavailable``: the metric's
    :meth:`~qa.metrics.base.Metric.unavailable_reason`, asked once per run by the caller (None: available)."""
    reason = unavailable or metric.missing_needs(sample)
    if reason:
        return Scored(None, "missing", reason)
    try:
        res = metric.compute(sample)
    except NotApplicable as exc:
        return Scored(None, "missing", not_applicable_text(exc))
    except Exception as exc:  # noqa: BLE001 - one metric failing is an error row, never the end of a run
        return Scored(None, "error", f"{sample.case_id}: {type(exc).__name__}: {exc}")
    value = float(res.value)
    if math.isnan(value):
        return Scored(None, "error", f"{sample.case_id}: metric returned NaN")
    return Scored(value, "ok", res.detail, res.map, dict(res.extra))
