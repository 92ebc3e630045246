"""What checks read about a metric and how they write numbers: its target and unit from its declaration (a
metric that is not registered cannot be gated), numbers in messages, set intervals as goodness, margins' origin.
"""

from __future__ import annotations

import math

from qa.errors import QAError, UnknownNameError
from qa.gate.data import GateError
from qa.gate.policy import MetricRule
from qa.metrics.base import Target
from qa.metrics.declarations import declaration


def fmt_num(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return ("+inf" if x > 0 else "-inf") + (f" {unit}" if unit else "")
    return f"{x + 0.0:.4g}" + (f" {unit}" if unit else "")  # + 0.0: never "-0"


def metric_target_unit(metric: str) -> tuple[Target, str]:
    """(target, unit) from the metric's declaration (:mod:`qa.metrics.declarations`: read from its source, no
    metric code runs); GateError when it is not registered or cannot be described."""
    try:
        declared = declaration(metric)
    except UnknownNameError as exc:
        raise GateError(f"metric {metric!r} is not registered here (see `qa metrics`)") from exc
    except QAError as exc:
        raise GateError(str(exc)) from exc
    return declared.target, declared.unit


def direction_problem(metric: str) -> str:
    """Why the direction of ``metric`` is unknown ('' when it is known)."""
    try:
        metric_target_unit(metric)
    except GateError as exc:
        return str(exc)
    return ""


def goodness_interval(value: tuple[float, float, float], target: Target) -> tuple[float, float, float]:
    """A set value (value, low, high) mapped to goodness (higher = better), as an interval (value, low, high)."""
    v, lo, hi = value
    ends = [target.goodness(x) for x in (lo, hi) if not math.isnan(x)]
    g = target.goodness(v)
    if not ends:
        return g, math.nan, math.nan
    best = 0.0 if target.kind == "value" and lo <= (target.value or 0.0) <= hi else max(ends)
    return g, min(ends), best


def margin_origin(rule: MetricRule, decoder: bool) -> str:
    """How the margin came about, e.g. " (max of 0.001 and 5% of the baseline)"."""
    absolute, relative = ((rule.decoder_margin, rule.decoder_relative_margin) if decoder
                          else (rule.margin, rule.relative_margin))
    if relative is None:
        return ""
    if absolute is None:
        return f" ({relative:.0%} of the baseline)"
    return f" (the larger of {fmt_num(absolute)} and {relative:.0%} of the baseline)"
