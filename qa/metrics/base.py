"""The metric interface.

A per-image metric receives an :class:`ImageSample` (numpy float32 (H, W, 3) images in [0, 1]) and returns a
:class:`MetricValue`; a set metric accumulates samples and returns a :class:`SetValue`. Each metric class
declares its direction (``higher_is_better``) or, where "better" is not a direction, a ``target`` (a value to be
close to, or "none"), its range, what it needs and which weights it uses; gates, charts and tables read
:func:`metric_target` from here, never from a list of their own.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from qa.averaging import Averaged
from qa.errors import QAError

Level = Literal["image", "case", "set"]
Need = Literal["reference", "latent", "encoder", "seeds", "baseline", "caption"]

#: seed value stored for metrics computed across all seeds of a case (level "case") or a whole set
ALL_SEEDS = -1


@dataclass
class ImageSample:
    """One decoded output and everything a metric may compare it with.

    ``output``/``reference``/``baseline``: float32 (H, W, 3) in [0, 1], all of the output's size (the engine
    resizes nothing silently: a reference of another size is None and the reason is in ``reference_note``).
    ``latent``/``reencoded``: the latent z the output was decoded from and E(output), numpy (C, h, w).
    ``seed_outputs``: the outputs of every seed of this case, this one included (level "case" metrics).
    ``redecoded``: D_baseline(E(output)), the output re-encoded and decoded again with the plain (baseline)
    decoder, float32 (H, W, 3); with ``baseline`` = D_baseline(z) it shows what of the output the latent sees.
    ``real``: the case's reference image at its own size, float32 (h, w, 3) in [0, 1], set also where
    ``reference`` is None (generate track: no pixel-aligned reference; another size): set-level realism metrics
    (FID, KID, CMMD) compare the outputs with the reference set's distribution through :attr:`real_image`.
    """

    case_id: str
    output: np.ndarray
    reference: np.ndarray | None = None
    caption: str = ""
    seed: int = 0
    latent: np.ndarray | None = None
    reencoded: np.ndarray | None = None
    seed_outputs: list[np.ndarray] = field(default_factory=list)
    baseline: np.ndarray | None = None
    reference_note: str = ""
    #: sha256 of the reference image's file (feature-cache key of ``real``/``reference``); "" = hash the pixels
    reference_sha256: str = ""
    redecoded: np.ndarray | None = None
    real: np.ndarray | None = None
    #: the baseline of every seed of this case, aligned with ``seed_outputs`` (per-seed baselines only: the
    #: generate track's source image for each seed); empty when the baseline does not depend on the seed
    seed_baselines: list[np.ndarray] = field(default_factory=list)

    @property
    def real_image(self) -> np.ndarray | None:
        """The reference-distribution image of this case: ``real``, else ``reference``, else None."""
        return self.real if self.real is not None else self.reference


@dataclass
class MetricValue:
    """A per-image result. ``map``: optional (H, W) float32 >= 0 at the output's resolution."""

    value: float
    map: np.ndarray | None = None
    detail: str = ""
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class SetValue:
    """A per-set result with a bootstrap confidence interval (NaN bounds when none was computed)."""

    value: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n: int = 0
    detail: str = ""


def all_finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite: one reduction (a NaN/Inf makes the sum non-finite) and the full
    element-wise test only when the sum is not finite (a NaN/Inf, or values so large that the sum overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = a.sum()
    return bool(np.isfinite(total) or np.isfinite(a).all())


def same_pixels(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays hold the same pixels (the first row compared first: most different pairs stop there).
    Metrics use it to skip work whose answer equal images fix (SSIM 1, PSNR +inf, zero seed variance)."""
    if a is b:
        return True
    if a.shape != b.shape:
        return False
    return bool(np.array_equal(a[:1], b[:1]) and np.array_equal(a, b))


class MetricInputError(QAError, ValueError):
    """An input a metric cannot score: wrong shape, sizes that differ, NaN/Inf pixels (an error row)."""


class NotApplicable(Exception):
    """Raised by a metric for a sample it does not apply to (e.g. no reference); recorded as missing."""


def not_applicable_text(exc: NotApplicable) -> str:
    """The stored reason of a :class:`NotApplicable`: always starting with "not applicable" (gates and reports
    recognise metrics that do not apply to a decoder by it)."""
    text = str(exc)
    return text if text.startswith("not applicable") else f"not applicable: {text}"


def says_not_applicable(reason: str) -> bool:
    """Whether a stored reason (a row's detail, possibly summarised with counts) is a :func:`not_applicable_text`."""
    return "not applicable" in reason


@dataclass(frozen=True)
class Target:
    """What "better" means for a metric. ``kind``: ``higher``, ``lower``, ``value`` (closer to ``value`` is
    better, e.g. 1.0 for an energy ratio against the reference) or ``none`` (no better or worse: bounds only)."""

    kind: Literal["higher", "lower", "value", "none"]
    value: float | None = None

    @property
    def has_direction(self) -> bool:
        """False for ``none``: such a metric is only checked against absolute bounds."""
        return self.kind != "none"

    def goodness(self, x: float) -> float:
        """``x`` mapped so that higher = better (x, -x, or -|x - value|); NaN for ``none``."""
        if self.kind == "higher":
            return x
        if self.kind == "lower":
            return -x
        if self.kind == "value" and self.value is not None:
            return -abs(x - self.value)
        return float("nan")

    def label(self) -> str:
        """Short words for tables and messages: "higher", "lower", "closer to 1", "none"."""
        return f"closer to {self.value:g}" if self.kind == "value" and self.value is not None else self.kind

    def phrase(self) -> str:
        """"higher is better", "closer to 1 is better" or "no direction"."""
        return "no direction" if self.kind == "none" else f"{self.label()} is better"


def metric_target(metric: object) -> Target:
    """The :class:`Target` a metric class or instance declares: its ``target`` attribute (a number, or "none"),
    else its ``higher_is_better`` direction."""
    return declared_target(getattr(metric, "target", None), getattr(metric, "higher_is_better", True))


def declared_target(target: object, higher_is_better: object = True) -> Target:
    """The :class:`Target` of a metric's ``target`` and ``higher_is_better`` attribute values (see :class:`Metric`);
    ValueError for a ``target`` that is neither None, a number nor "none"."""
    if target is None:
        return Target("higher" if higher_is_better else "lower")
    if isinstance(target, str):
        if target != "none":
            raise ValueError(f"metric target must be a number, None or 'none', got {target!r}")
        return Target("none")
    if isinstance(target, bool) or not isinstance(target, numbers.Real):
        raise ValueError(f"metric target must be a number, None or 'none', got {target!r}")
    return Target("value", float(target))


class Metric(ABC):  # noqa: B024 - a base of attributes; the two kinds below add the abstract methods
    """Base of every metric. Subclasses set the class attributes below."""

    name: str = ""
    version: str = "1"
    higher_is_better: bool = True
    #: None: better is the ``higher_is_better`` direction; a number: closer to it is better; "none": neither
    #: (only absolute bounds apply). Read it through :func:`metric_target`.
    target: float | Literal["none"] | None = None
    value_range: tuple[float, float] = (float("-inf"), float("inf"))
    level: Level = "image"
    needs: tuple[Need, ...] = ("reference",)
    weights: tuple[str, ...] = ()
    unit: str = ""
    description: str = ""
    #: how values are averaged over a case's seeds and a set's cases (:mod:`qa.averaging`): "value", or
    #: "noise_power" for a decibel ratio of signal to noise power (PSNR: the mean of 10^(-v/10), back in dB)
    averaged: Averaged = "value"

    def unavailable_reason(self) -> str | None:
        """None when the metric can be computed here; else why not plus the command that fixes it."""
        return None

    def missing_needs(self, sample: ImageSample) -> str | None:
        """Which declared need the sample lacks, as a sentence, or None."""
        checks = {
            "reference": sample.reference is not None,
            "latent": sample.latent is not None,
            "encoder": sample.reencoded is not None,
            "seeds": len(sample.seed_outputs) >= 2,
            "baseline": sample.baseline is not None,
            "caption": bool(sample.caption),
        }
        for need in self.needs:
            if not checks[need]:
                extra = f" ({sample.reference_note})" if need == "reference" and sample.reference_note else ""
                return f"not applicable: needs {need}{extra}"
        return None


def paired(metric: Metric, sample: ImageSample,
           against: Literal["reference", "baseline"] = "reference") -> tuple[np.ndarray, np.ndarray]:
    """``(output, other)``: the output and the image a full-reference metric compares it with.

    ``against``: ``"reference"`` (fidelity metrics) or ``"baseline"`` (the decoder's baseline in the reference's
    place: agreement metrics). Raises :class:`NotApplicable` when the metric's declared needs are unmet and
    :class:`MetricInputError` when a baseline's shape differs from the output's (a reference's shape is checked
    by the functional metric, which names the sizes).
    """
    reason = metric.missing_needs(sample)
    other = sample.reference if against == "reference" else sample.baseline
    if reason is not None or other is None:
        raise NotApplicable(reason or f"not applicable: needs {against}")
    if against == "baseline" and sample.output.shape != other.shape:
        raise MetricInputError(
            f"{metric.name}: {sample.case_id}: output {sample.output.shape} and baseline {other.shape} differ"
        )
    return sample.output, other


class ImageMetric(Metric):
    """A metric computed per output image (level "image") or per case across seeds (level "case")."""

    @abstractmethod
    def compute(self, sample: ImageSample) -> MetricValue:
        """Score one sample. Raise :class:`NotApplicable` when it does not apply."""

    def prepare(self, samples: list[ImageSample]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Optional: batch work for ``samples`` before :meth:`compute` is called on each of them (the engine passes
        the samples of one case; a failure here is ignored and ``compute`` reports its own error)."""


class SetMetric(Metric):
    """A metric over a whole set of outputs (FID, KID, CMMD, CLIP score). Stateful: update, compute, reset.

    Declared state beyond the subclass's own (the torchmetrics pattern):

    * ``update_errors``: why :meth:`update` failed for some sample (the engine records each failure with
      :meth:`record_update_error`; the set value is then stored as an error naming the last one);
    * mergeable state: a subclass that can be computed from per-shard parts (the Ray engine) overrides
      :meth:`export_state` and :meth:`merge_state`; :attr:`mergeable` says whether it does.
    """

    level: Level = "set"
    #: failures of :meth:`update` since the last :meth:`clear_update_errors`, oldest first (engine-recorded)
    update_errors: tuple[str, ...] = ()

    def record_update_error(self, message: str) -> None:
        """Remember that :meth:`update` raised for a sample (``message`` names the case and the error)."""
        self.update_errors = (*self.update_errors, message)

    def clear_update_errors(self) -> None:
        """Forget recorded update failures (a new shard or run starts)."""
        self.update_errors = ()

    @property
    def update_error(self) -> str:
        """The last recorded update failure, or "" (the detail of the metric's error row)."""
        return self.update_errors[-1] if self.update_errors else ""

    @property
    def mergeable(self) -> bool:
        """True when the subclass implements :meth:`export_state` and :meth:`merge_state`."""
        cls = type(self)
        return cls.export_state is not SetMetric.export_state and cls.merge_state is not SetMetric.merge_state

    def export_state(self) -> Any:
        """Everything added since the last reset, picklable, for another instance's :meth:`merge_state`."""
        raise NotImplementedError(f"{self.name}: this set metric cannot export a per-shard state")

    def merge_state(self, state: Any) -> None:
        """Add another instance's :meth:`export_state` (same metric and settings; merge in shard order)."""
        raise NotImplementedError(f"{self.name}: this set metric cannot merge per-shard states")

    @abstractmethod
    def update(self, sample: ImageSample) -> None:
        """Add one output (and its reference, if the metric uses one)."""

    @abstractmethod
    def compute(self) -> SetValue:
        """The set value from everything added since the last reset."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything added."""
