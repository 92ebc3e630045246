"""Gate policies: TOML files (one per track, in ``suites/``) with per-metric bounds and margins.

A policy file looks like::

    [policy]
    track = "upscale"              # decode | upscale | generate
    baseline_decoder = "plain"     # optional: "plain" = the candidate's own plain decode in the same run (bicubic
                                   # at its factor for a pixel upsampler, the plain decode of the same latent for
                                   # a latent decoder: `baseline_<metric>`), which fits every candidate and needs
                                   # no other run; or a decoder NAME: its latest run (skipped at another scale)
    confidence = 0.95              # bootstrap interval coverage
    n_boot = 2000                  # bootstrap resamples (100 to 100,000)
    seed = 0                       # bootstrap seed (an integer >= 0)

    [metrics.psnr]
    group = "fidelity"             # fidelity | realism | invented
    required = true                # missing values fail (true) or skip (false)
    min = 20.0                     # absolute bound on the set mean (metric units); also `max`
    margin = 0.3                   # allowed loss against a run baseline (approved / run id), metric units
    relative_margin = 0.05         # allowed loss as a fraction of the baseline's mean (0.05 = 5%); with
                                   # `margin` too, the larger of the two applies (margin acts as a floor)
    decoder_margin = 4.0           # allowed loss against the decoder baseline (also decoder_relative_margin);
                                   # with "plain", psnr is compared image by image with baseline_psnr
    image_relative_margin = 0.5    # worst images: no single image may get worse than its value in the run
                                   # baseline by more than this fraction (plus image_margin, metric units)
    image_margin = 0.002           #   absolute floor of that per-image allowance (default 0)
    tail_quantile = 0.95           # worst images: this quantile of the per-image values may not get worse than
                                   # the baseline's by more than the metric's margin / relative_margin
    allow_review = false           # whether `needs-review` passes the test (a reviewer then signs off)
    applies_to = ["text"]          # the rule is used only for runs on a reference set of one of these kinds (a
                                   # text set: a manifest with a `text` column); on other sets every check of
                                   # the metric is skipped with that reason (default: every set)
    not_applicable = "fail"        # a required metric that does not apply to this decoder at all (every row
                                   # "not applicable", e.g. agreement for the source pipeline itself, which has
                                   # no baseline): "fail" (default) or "skip" with the reason. Missing weights,
                                   # errors and NaN always fail a required metric.

Margins are in the metric's own units (relative margins: a fraction of the baseline's value) and always mean
"worse by at most this much"; which way is worse comes from the metric class (its target: higher, lower, a
value, or none), never from the policy.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from qa.bootstrap import MAX_N_BOOT, N_BOOT
from qa.errors import QAError, did_you_mean
from qa.settings import get_settings
from qa.tracks import TRACKS

GROUPS = ("fidelity", "realism", "invented")
_POLICY_KEYS = {"track", "baseline_decoder", "confidence", "n_boot", "seed", "description"}
_RULE_KEYS = {"group", "required", "min", "max", "margin", "decoder_margin", "allow_review", "not_applicable", "note",
              "relative_margin", "decoder_relative_margin", "image_relative_margin", "image_margin", "tail_quantile",
              "applies_to"}
#: kinds of reference set a rule can be limited to (``applies_to``); a set declares its kind in its manifest
SET_KINDS = ("text",)
NOT_APPLICABLE = ("fail", "skip")


class PolicyError(QAError):
    """A policy file that is missing, malformed or has unknown keys."""


@dataclass(frozen=True)
class MetricRule:
    """What a policy demands of one metric. Bounds and margins in the metric's units; None = not checked."""

    metric: str
    group: str = "fidelity"
    required: bool = True
    min: float | None = None
    max: float | None = None
    margin: float | None = None
    decoder_margin: float | None = None
    allow_review: bool = False
    note: str = ""
    not_applicable: str = "fail"
    relative_margin: float | None = None
    decoder_relative_margin: float | None = None
    image_relative_margin: float | None = None
    image_margin: float | None = None
    tail_quantile: float | None = None
    applies_to: tuple[str, ...] = ()

    def compares(self, decoder: bool) -> bool:
        """Whether this rule compares with a run baseline (``decoder`` False) or a decoder baseline at all."""
        if decoder:
            return self.decoder_margin is not None or self.decoder_relative_margin is not None
        return self.margin is not None or self.relative_margin is not None

    def allowed_loss(self, baseline_mean: float, decoder: bool) -> float | None:
        """The allowed loss against a baseline whose mean is ``baseline_mean`` (metric units; None = no rule):
        the larger of the absolute margin and the relative margin times ``|baseline_mean|``."""
        absolute, relative = ((self.decoder_margin, self.decoder_relative_margin) if decoder
                              else (self.margin, self.relative_margin))
        if absolute is None and relative is None:
            return None
        parts = [absolute or 0.0]
        if relative is not None and math.isfinite(baseline_mean):
            parts.append(relative * abs(baseline_mean))
        return max(parts)

    def checks_worst_images(self) -> bool:
        """Whether the rule has a worst-images rule (a per-image cap or a tail quantile)."""
        return self.image_relative_margin is not None or self.image_margin is not None or self.tail_quantile is not None


@dataclass(frozen=True)
class Policy:
    """A parsed policy. ``source`` is the file it came from ('' when built in code)."""

    track: str
    metrics: dict[str, MetricRule] = field(default_factory=dict)
    baseline_decoder: str = ""
    confidence: float = 0.95
    n_boot: int = 2000
    seed: int = 0
    description: str = ""
    source: str = ""

    def for_set_kinds(self, kinds: list[str] | tuple[str, ...]) -> Policy:
        """This policy as it applies to a run on a reference set of ``kinds`` (e.g. ``["text"]``): a rule whose
        ``applies_to`` names none of them becomes an optional rule with no bound or margin (every check of it is
        skipped, saying why); the other rules stay as written. The result is identified (``to_json``,
        ``sha256``) by this policy as written: a gate stores the policy file's hash, and the set's kinds are
        stored with the run."""
        rules = {}
        for name, rule in self.metrics.items():
            if rule.applies_to and not set(rule.applies_to) & set(kinds):
                where = " or ".join(rule.applies_to)
                rule = MetricRule(metric=name, group=rule.group, required=False, applies_to=rule.applies_to,
                                  note=f"applies to {where} reference sets only (this run's set is not one)")
            rules[name] = rule
        written = self.written if isinstance(self, SetPolicy) else self
        return SetPolicy(**{f.name: getattr(self, f.name) for f in fields(Policy)} | {"metrics": rules},
                         written=written)

    def rule(self, metric: str) -> MetricRule:
        """The rule of ``metric``. A metric the policy does not name (an ad hoc check in a test) is required,
        with no bounds or margins of its own: asking for it means it must be there (fail closed)."""
        return self.metrics.get(metric) or MetricRule(metric=metric, required=True)

    def metric_names(self, group: str | None = None) -> list[str]:
        """Metric names in file order, optionally only one group's."""
        return [m for m, r in self.metrics.items() if group is None or r.group == group]

    def to_json(self) -> str:
        """Canonical JSON of everything that decides a verdict (not the source path)."""
        d = asdict(self)
        d.pop("source")
        return json.dumps(d, sort_keys=True, default=str)

    def sha256(self) -> str:
        """sha256 of :meth:`to_json`: stored with every gate decided under this policy."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


@dataclass(frozen=True)
class SetPolicy(Policy):
    """A :class:`Policy` resolved for the reference-set kinds of one run (:meth:`Policy.for_set_kinds`); its JSON
    and sha256 are those of the policy as written (``written``)."""

    written: Policy | None = None

    def to_json(self) -> str:
        return self.written.to_json() if self.written is not None else super().to_json()


def _unknown(keys: set[str], allowed: set[str], where: str) -> None:
    for key in sorted(keys - allowed):
        hint = did_you_mean(key, sorted(allowed), n=1, cutoff=0.6) or f"allowed: {', '.join(sorted(allowed))}"
        raise PolicyError(f"{where}: unknown key {key!r}", hint)


def _number(value: object, where: str, minimum: float | None = None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise PolicyError(f"{where}: expected a finite number, got {value!r}",
                          "bounds and margins must be finite (inf or nan would let anything pass)")
    if minimum is not None and float(value) < minimum:
        raise PolicyError(f"{where}: must be >= {minimum}, got {value!r}")
    return float(value)


def _quantile(value: object, where: str) -> float | None:
    q = _number(value, where, 0.5)
    if q is not None and q >= 1.0:
        raise PolicyError(f"{where}: must be in [0.5, 1), got {value!r}")
    return q


def _kinds(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or any(k not in SET_KINDS for k in value):
        raise PolicyError(f"{where}: expected a list of reference set kinds ({', '.join(SET_KINDS)}), got {value!r}")
    return tuple(value)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{where}: expected true or false, got {value!r}")
    return value


def parse_policy(data: dict[str, object], source: str = "<policy>") -> Policy:
    """Validate a decoded TOML document and build a :class:`Policy`; errors name ``source`` and the key."""
    _unknown(set(data), {"policy", "metrics"}, source)
    head = data.get("policy", {})
    if not isinstance(head, dict):
        raise PolicyError(f"{source}: [policy] must be a table")
    _unknown(set(head), _POLICY_KEYS, f"{source} [policy]")
    track = head.get("track")
    if track not in TRACKS:
        raise PolicyError(f"{source} [policy]: track must be one of {', '.join(TRACKS)}, got {track!r}")
    confidence = _number(head.get("confidence", 0.95), f"{source} [policy] confidence", 0.5)
    if confidence is None or confidence >= 1.0:
        raise PolicyError(f"{source} [policy] confidence: must be in [0.5, 1), got {confidence!r}")
    n_boot = head.get("n_boot", 2000)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or not 100 <= n_boot <= MAX_N_BOOT:
        raise PolicyError(f"{source} [policy] n_boot: expected an integer from 100 to {MAX_N_BOOT:,}, got {n_boot!r}",
                          f"the bootstrap holds about 16 bytes x n_boot x images in memory; {N_BOOT} is the usual "
                          "choice")
    seed = head.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PolicyError(f"{source} [policy] seed: expected an integer >= 0, got {seed!r}",
                          "the bootstrap seed is a non-negative integer, e.g. seed = 0")
    raw_metrics = data.get("metrics", {})
    if not isinstance(raw_metrics, dict) or not raw_metrics:
        raise PolicyError(f"{source}: no [metrics.NAME] tables", "a policy must name at least one metric")
    rules: dict[str, MetricRule] = {}
    for name, raw in raw_metrics.items():
        where = f"{source} [metrics.{name}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: must be a table")
        _unknown(set(raw), _RULE_KEYS, where)
        group = raw.get("group", "fidelity")
        if group not in GROUPS:
            raise PolicyError(f"{where} group: must be one of {', '.join(GROUPS)}, got {group!r}")
        lo = _number(raw.get("min"), f"{where} min")
        hi = _number(raw.get("max"), f"{where} max")
        if lo is not None and hi is not None and lo > hi:
            raise PolicyError(f"{where}: min {lo} is above max {hi}")
        na = raw.get("not_applicable", "fail")
        if na not in NOT_APPLICABLE:
            raise PolicyError(f"{where} not_applicable: must be one of {', '.join(NOT_APPLICABLE)}, got {na!r}")
        rules[name] = MetricRule(
            metric=name, group=str(group), required=_bool(raw.get("required", True), f"{where} required"),
            min=lo, max=hi, margin=_number(raw.get("margin"), f"{where} margin", 0.0),
            decoder_margin=_number(raw.get("decoder_margin"), f"{where} decoder_margin", 0.0),
            allow_review=_bool(raw.get("allow_review", False), f"{where} allow_review"), note=str(raw.get("note", "")),
            not_applicable=str(na),
            relative_margin=_number(raw.get("relative_margin"), f"{where} relative_margin", 0.0),
            decoder_relative_margin=_number(raw.get("decoder_relative_margin"), f"{where} decoder_relative_margin",
                                            0.0),
            image_relative_margin=_number(raw.get("image_relative_margin"), f"{where} image_relative_margin", 0.0),
            image_margin=_number(raw.get("image_margin"), f"{where} image_margin", 0.0),
            tail_quantile=_quantile(raw.get("tail_quantile"), f"{where} tail_quantile"),
            applies_to=_kinds(raw.get("applies_to", []), f"{where} applies_to"),
        )
    return Policy(track=str(track), metrics=rules, baseline_decoder=str(head.get("baseline_decoder", "")),
                  confidence=float(confidence), n_boot=int(n_boot), seed=int(seed),
                  description=str(head.get("description", "")), source=source)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy TOML file."""
    p = Path(path)
    if not p.is_file():
        raise PolicyError(f"policy file {p} does not exist", "pass --policy PATH to a TOML file (see suites/)")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy file {p} is not valid TOML: {exc}") from exc
    return parse_policy(data, str(p))


def suites_dirs() -> list[Path]:
    """Where the shipped suites live: ./suites, then the suites/ folder of the qa source tree (a checkout or an
    editable install): :attr:`qa.settings.Settings.suites_dirs`."""
    return list(get_settings().suites_dirs)


def default_policy_path(track: str) -> Path:
    """The shipped policy of ``track`` (``suites/policy_<track>.toml``)."""
    if track not in TRACKS:
        raise PolicyError(f"unknown track {track!r}", f"one of {', '.join(TRACKS)}")
    for folder in suites_dirs():
        candidate = folder / f"policy_{track}.toml"
        if candidate.is_file():
            return candidate
    raise PolicyError(f"no policy file for track {track!r} in {' or '.join(str(d) for d in suites_dirs())}",
                      "pass --policy PATH")
