"""Gate checks: one metric of a candidate run against an absolute bound or a baseline run, under a policy.

Every check yields a :class:`CheckResult` with a verdict (``pass``, ``fail``, ``needs-review``, ``skipped``)
and a message that names the metric, the candidate value, the baseline, the interval and the margin. Checks
fail closed: a required metric whose values are missing (no weights, decoder error, NaN, unregistered metric,
unfinished run) fails with the reason from the stored rows; an optional one is skipped with that reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from qa.averaging import interval_of, mean_of, paired_interval
from qa.bootstrap import Interval
from qa.gate import data as gate_data
from qa.gate.baseline import Baseline
from qa.gate.data import (
    MetricData,
    RunInfo,
    case_problems,
    load_metric,
    metric_averaging,
    problems_text,
    run_cases,
    run_metric_names,
)
from qa.gate.pairing import Pairing, pair
from qa.gate.policy import MetricRule, Policy
from qa.gate.result import CheckResult
from qa.gate.stats import paired_verdict, unpaired_interval
from qa.gate.units import direction_problem, fmt_num, goodness_interval, margin_origin, metric_target_unit
from qa.metrics.base import Target, says_not_applicable
from qa.store import Store


class GateContext:
    """Checks on one candidate run under one policy; collects every result in :attr:`results`.

    ``skip`` is what a skipped check calls (the pytest plugin passes ``pytest.skip``); by default a skipped
    result is only recorded.
    """

    def __init__(self, store: Store, run: RunInfo, policy: Policy,
                 on_result: Callable[[CheckResult], None] | None = None) -> None:
        self.store = store
        self.run = run
        self.policy = policy.for_set_kinds(gate_data.reference_set_kinds(store, run.run_id))  # text rules on a text set
        self.results: list[CheckResult] = []
        self._on_result = on_result
        self._cache: dict[tuple[str, str, bool], MetricData] = {}
        #: run id -> where a baseline run's rows are read (a baseline file); default: the candidate's store
        self.readers: dict[str, Any] = {}

    # -- helpers --------------------------------------------------------------------------------------------
    def read_from(self, baseline: Baseline) -> None:
        """Read ``baseline``'s run from its own reader (a verified baseline file) rather than the store."""
        if baseline.run is not None and baseline.reader is not None:
            self.readers[baseline.run.run_id] = baseline.reader

    def data(self, run_id: str, metric: str, baseline: bool = False) -> MetricData:
        """``metric`` of ``run_id``: a baseline's from its own reader when it has one (so a candidate that shares
        a run id with a baseline file's run is still read from the store, and the baseline from the file)."""
        reader = self.readers.get(run_id) if baseline else None
        key = (run_id, metric, reader is not None)
        if key not in self._cache:
            self._cache[key] = load_metric(reader if reader is not None else self.store, run_id, metric)
        return self._cache[key]

    def _emit(self, res: CheckResult) -> CheckResult:
        res.candidate_run_id = self.run.run_id
        self.results.append(res)
        if self._on_result is not None:
            self._on_result(res)
        return res

    def _run_problem(self) -> str:
        err, r = f": {self.run.error}" if self.run.error else "", self.run
        return "" if r.status == "finished" else (f"run {r.run_id} of {r.decoder} did not finish (status {r.status}"
                                                  f"{err}): finish it with `qa run --resume {r.run_id}`, then gate it again")

    def _unavailable(self, metric: str) -> str:
        """Why ``metric`` has no usable candidate values ('' when it has)."""
        problem = self._run_problem()
        if problem:
            return problem
        problem = direction_problem(metric)
        if problem:
            return problem
        d = self.data(self.run.run_id, metric)
        if not d.has_rows:
            have = ", ".join(run_metric_names(self.store, self.run.run_id)) or "none"
            return f"run {self.run.run_id} has no {metric} results (metrics in the run: {have})"
        if d.problems:
            total = len(set(d.problems) | set(d.per_case))
            return f"{len(d.problems)} of {total} cases have no {metric} value: {problems_text(d.problems, total)}"
        if d.set_problem:
            return f"{metric} has no set value: {d.set_problem}"
        if not d.per_case and d.set_value is None:
            return f"run {self.run.run_id} has no {metric} values"
        return ""

    def _not_applicable(self, metric: str) -> bool:
        """True when every value of ``metric`` in the candidate run is missing as "not applicable" (the metric
        does not apply to this decoder at all, e.g. agreement for a decoder without a baseline)."""
        if self._run_problem():
            return False
        d = self.data(self.run.run_id, metric)
        reasons = list(d.problems.values()) + ([d.set_problem] if d.set_problem else [])
        return bool(reasons) and not d.per_case and d.set_value is None and all(
            says_not_applicable(r) for r in reasons)

    def _closed(self, res: CheckResult, reason: str, rule: MetricRule) -> CheckResult:
        if rule.required and rule.not_applicable == "skip" and self._not_applicable(res.metric):
            res.verdict = "skipped"
            res.message = f"{res.metric} [{res.kind}]: does not apply to {self.run.decoder} (policy: not_applicable = " \
                          f"\"skip\"): {reason}"
            return self._emit(res)
        res.verdict = "fail" if rule.required else "skipped"
        state = "required metric missing" if rule.required else "optional metric skipped"
        res.message = f"{res.metric} [{res.kind}]: {state}: {reason}"
        return self._emit(res)

    def _plain_missing(self, base_metric: str) -> bool:
        """Whether the candidate has no plain decode at all: every ``base_metric`` row is "not applicable"."""
        d = self.data(self.run.run_id, base_metric)
        return bool(d.problems) and not d.per_case and all(says_not_applicable(r) for r in d.problems.values())

    def candidate_interval(self, metric: str) -> Interval:
        """Set mean and bootstrap interval of the candidate's per-case values (or the stored set value)."""
        d = self.data(self.run.run_id, metric)
        if d.set_value is not None and not d.per_case:
            v, lo, hi = d.set_value
            return Interval(v, lo, hi, 1, self.policy.confidence)
        vals = [d.per_case[c] for c in sorted(d.per_case)]
        return interval_of(vals, metric_averaging(metric), self.policy.confidence, self.policy.n_boot, self.policy.seed)

    # -- checks ---------------------------------------------------------------------------------------------
    def cases_ok(self) -> CheckResult:
        """Every case of the run decoded (no ``case`` error rows) and the run finished."""
        res = CheckResult(metric="case", kind="cases", verdict="pass", message="")
        problem = self._run_problem()
        bad = case_problems(self.store, self.run.run_id) if not problem else {}
        cases = run_cases(self.store, self.run.run_id)
        if not problem and not cases:
            problem = f"run {self.run.run_id} has no cases"
        res.n = len(cases)
        if problem or bad:
            shown = "; ".join(bad[c] for c in sorted(bad)[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
            res.verdict = "fail"
            res.message = problem or f"{len(bad)} of {len(cases)} cases failed to decode: {shown}"
        else:
            res.message = f"all {len(cases)} cases of run {self.run.run_id} decoded"
        return self._emit(res)

    def policies_of(self, baselines: list[Baseline]) -> None:
        """Each approved baseline not checked yet: the policy is the one it was approved under (whatever the rules)."""
        done = {r.baseline_kind for r in self.results if r.kind == "policy"}
        for b in [b for b in baselines if b.policy_sha256 and b.kind not in done]:
            problem = b.policy_problem(self.policy.sha256(), self.policy.source)
            self._emit(CheckResult("policy", "policy", "fail" if problem else "pass", problem or
                                   f"the policy {b.kind} was approved under", baseline_kind=b.kind, baseline_run_id=b.run_id))

    def bound(self, metric: str, minimum: float | None, maximum: float | None, kind: str = "bounds") -> CheckResult:
        """Absolute bounds on the candidate's set mean (metric units)."""
        rule = self.policy.rule(metric)
        res = CheckResult(metric=metric, kind=kind, verdict="pass", message="", required=rule.required,
                          allow_review=rule.allow_review)
        if minimum is None and maximum is None:
            res.verdict, res.message = "skipped", (f"{metric}: the policy sets no absolute bound"
                                                   + (f" ({rule.note})" if rule.note else ""))
            return self._emit(res)
        reason = self._unavailable(metric)
        if reason:
            return self._closed(res, reason, rule)
        target, unit = metric_target_unit(metric)
        iv = self.candidate_interval(metric)
        res.candidate_mean, res.candidate_ci, res.n = iv.mean, (iv.low, iv.high), iv.n
        parts, ok = [], True
        if minimum is not None:
            parts.append(f">= {fmt_num(minimum, unit)}")
            ok &= iv.mean >= minimum
            res.bound = minimum
        if maximum is not None:
            parts.append(f"<= {fmt_num(maximum, unit)}")
            ok &= iv.mean <= maximum
            res.bound = maximum if minimum is None else res.bound
        res.verdict = "pass" if ok else "fail"
        res.message = (f"{metric} ({target.phrase()}): candidate run {self.run.run_id} set mean "
                       f"{fmt_num(iv.mean, unit)} [{iv.confidence:.0%} CI {fmt_num(iv.low)}, {fmt_num(iv.high)}] over {iv.n} "
                       f"images; bound {' and '.join(parts)} -> {res.verdict}")
        return self._emit(res)

    def _baseline_gate(self, metric: str, baseline: Baseline, kind: str, has_rule: bool, which: str
                       ) -> tuple[CheckResult, str]:
        """A result for a check against ``baseline`` and, when the check cannot go on, why ('' when it can).
        Skips and fail-closed outcomes are already emitted when the reason is returned."""
        rule = self.policy.rule(metric)
        res = CheckResult(metric=metric, kind=kind, verdict="pass", message="", required=rule.required,
                          allow_review=rule.allow_review, baseline_kind=baseline.kind,
                          baseline_run_id=baseline.run_id)
        if not has_rule:  # a rule limited to other kinds of set says that, not "no margin" (CI audit L3)
            res.verdict, res.message = "skipped", (f"{metric}: not checked: its rule {rule.note}" if rule.applies_to
                                                   and rule.note else f"{metric}: the policy sets no {which} against "
                                                   f"{baseline.kind} baselines" + (f" ({rule.note})" if rule.note else ""))
            return self._emit(res), "skipped"
        if baseline.inapplicable:
            res.verdict = "skipped"
            # the same words for every metric: pytest folds identical skip reasons into one line, said once
            res.message = f"baseline {baseline.kind} does not apply: {baseline.inapplicable}"
            return self._emit(res), "skipped"
        if baseline.error:  # no approved run, a broken chain, a baseline file that does not verify: fail closed
            res.verdict = "fail"
            res.message = f"{metric} [{kind}]: cannot compare with baseline {baseline.kind}: {baseline.error}"
            return self._emit(res), "closed"
        changed = baseline.policy_problem(self.policy.sha256(), self.policy.source)
        if changed:  # the same words for every metric: pytest folds them into one line
            res.verdict, res.message = "fail", changed
            return self._emit(res), "closed"
        if baseline.run is None:
            res.message = f"{metric}: no baseline to compare with: {baseline.note}"
            if baseline.kind == "none":  # chosen explicitly (the first release): bounds and decoder baselines only
                reason = self._unavailable(metric)
                if reason:  # yet a required metric must be there: a first release approved without it anchors none
                    return self._closed(res, reason, rule), "closed"
                res.verdict = "skipped"
                res.notes.append("no baseline (--baseline none)")
                return self._emit(res), "skipped"
            return self._closed(res, f"no baseline run: {baseline.note}", rule), "closed"
        reason = self._unavailable(metric)
        if not reason and not baseline.metric_prefix:  # a plain decode is the candidate's own run: same versions
            reason = version_problem(metric, self.data(self.run.run_id, metric),
                                     self.data(baseline.run.run_id, metric, baseline=True), baseline.run.run_id)
        if reason:
            return self._closed(res, reason, rule), "closed"
        target, _ = metric_target_unit(metric)
        if not target.has_direction:
            res.verdict = "skipped"
            res.message = f"{metric} [{kind}]: the metric has no direction (target none): only its bounds are gated"
            return self._emit(res), "skipped"
        if self.run.run_id == baseline.run.run_id and not baseline.metric_prefix:
            res.notes.append(f"the baseline is the candidate run itself ({baseline.run.run_id}): "
                             "this comparison cannot fail")
        return res, ""

    def _paired(self, res: CheckResult, metric: str, baseline: RunInfo, target: Target, base_metric: str = ""
                ) -> Pairing:
        """Candidate and baseline per-case goodness (higher = better), or why they cannot be paired
        (:func:`qa.gate.pairing.pair`); ``base_metric``: the baseline's metric standing for ``metric``."""
        base = self.data(baseline.run_id, base_metric or metric, baseline=True)
        found = pair(self.data(self.run.run_id, metric), base, target, base_metric or metric, baseline.run_id)
        if not found.why and base.problems:
            res.notes.append(f"{len(base.problems)} baseline cases without {metric} values were left out")
        return found

    def against(self, metric: str, baseline: Baseline, margin: float | None = None) -> CheckResult:
        """Paired comparison with ``baseline``: the interval of the mean difference against ``-margin``.

        ``margin`` (metric units) replaces the policy's; by default the policy's ``margin``/``relative_margin``
        (``decoder_*`` against a decoder baseline) give it: the larger of the absolute margin and the relative
        margin times the baseline's mean (its distance from the target, for a metric with a target value).
        """
        rule = self.policy.rule(metric)
        which = "decoder_margin" if baseline.is_decoder else "margin"
        if margin is not None and (margin < 0 or math.isnan(margin)):
            raise ValueError(f"margin for {metric} must be >= 0 (metric units), got {margin}")
        res, stop = self._baseline_gate(metric, baseline, "baseline",
                                        margin is not None or rule.compares(baseline.is_decoder), which)
        if stop or baseline.run is None:
            return res
        target, unit = metric_target_unit(metric)
        cand = self.data(self.run.run_id, metric)
        cand_iv = self.candidate_interval(metric)
        res.candidate_mean, res.candidate_ci = cand_iv.mean, (cand_iv.low, cand_iv.high)
        import numpy as np

        base_metric = baseline.metric_of(metric)
        if cand.per_case:
            paired = self._paired(res, metric, baseline.run, target, base_metric)
            c, b, why = paired.cand, paired.base, paired.why
            if why and baseline.metric_prefix and self._plain_missing(base_metric):
                res.verdict = "skipped"
                res.message = f"baseline {baseline.kind} does not apply: {self.run.decoder} has no plain decode"
                return self._emit(res)
            if why:
                return self._closed(res, why, self.policy.rule(metric))
            keys = sorted(c)
            base_vals = self.data(baseline.run.run_id, base_metric, baseline=True).per_case
            averaging = metric_averaging(base_metric)
            res.baseline_mean = mean_of([base_vals[k] for k in keys], averaging)
            iv = paired_interval([c[k] for k in keys], [b[k] for k in keys], averaging, self.policy.confidence,
                                 self.policy.n_boot, self.policy.seed)
            # a noise-power mean is higher-is-better by declaration: its goodness is its mean
            base_goodness = float(np.mean([b[k] for k in keys])) if averaging == "value" else res.baseline_mean
            how = paired.how
        else:
            base = self.data(baseline.run.run_id, base_metric, baseline=True)
            if base.set_value is None or cand.set_value is None:
                return self._closed(res, f"baseline run {baseline.run.run_id} has no {metric} set value "
                                         f"({base.set_problem or 'no rows'})", rule)
            iv = unpaired_interval(goodness_interval(cand.set_value, target), goodness_interval(base.set_value, target),
                                   True, self.policy.confidence, points=self.policy.n_boot == 0)
            res.baseline_mean = base.set_value[0]
            base_goodness = target.goodness(base.set_value[0])
            how = "set values, unpaired (interval from both runs' intervals" + (
                "; an end is unknown, so unbounded)" if math.isinf(iv.low) or math.isinf(iv.high) else ")")
        if margin is None:
            margin = rule.allowed_loss(base_goodness, baseline.is_decoder)
        res.margin = margin
        res.diff_mean, res.diff_ci, res.n = iv.mean, (iv.low, iv.high), iv.n
        res.verdict = paired_verdict(iv, float(margin or 0.0))
        explain = {"pass": "the interval stays under the allowance",
                   "fail": "clearly worse: the whole interval is over the allowance",
                   "needs-review": "the interval straddles the allowance" + (" (policy allows review)" if rule.allow_review
                                                                        else "; the policy does not allow review")}
        against = (f"its plain decode ({base_metric})" if baseline.metric_prefix
                   else f"baseline {'' if baseline.kind == 'run' else baseline.kind + ' '}run {baseline.run.run_id}")
        res.message = (
            f"{metric} ({target.phrase()}): candidate run {self.run.run_id} mean "
            f"{fmt_num(cand_iv.mean, unit)} vs {against} mean "
            f"{fmt_num(res.baseline_mean, unit)}; worse by {fmt_num(-iv.mean, unit)}, "
            f"{iv.confidence:.0%} CI [{fmt_num(-iv.high)}, {fmt_num(-iv.low)}] {how}; allowed {fmt_num(margin, unit)}"
            f"{margin_origin(rule, baseline.is_decoder)} -> {res.verdict}: {explain[res.verdict]}"
            + "".join(f" (note: {n})" for n in res.notes if "candidate run itself" in n)
        )
        return self._emit(res)

    def worst_images(self, metric: str, baseline: Baseline) -> CheckResult:
        """The worst images against a run baseline (no interval; a plain rule on the paired images):

        * no image may be worse than in the baseline by more than ``image_margin`` + ``image_relative_margin``
          x its baseline value (its distance from the target, for a target value), and
        * the policy's ``tail_quantile`` of the per-image values may not be worse than the baseline's by more
          than the metric's margin (``margin``/``relative_margin`` of that quantile).

        Candidate images the baseline has no value for are judged by neither, so the check is then at best
        ``needs-review`` (blocking unless the policy allows review), never a silent pass.
        """
        from qa.gate.worst import judge_worst_images

        rule = self.policy.rule(metric)
        res, stop = self._baseline_gate(metric, baseline, "worst_images", rule.checks_worst_images(),
                                        "image_relative_margin/tail_quantile")
        if stop or baseline.run is None:
            return res
        target, unit = metric_target_unit(metric)
        paired = self._paired(res, metric, baseline.run, target)
        c, b, why = paired.cand, paired.base, paired.why
        if not self.data(self.run.run_id, metric).per_case:
            why = f"{metric} has no per-image values (a set metric): the worst-images rule does not apply"
            res.verdict, res.message = "skipped", f"{metric} [worst_images]: {why}"
            return self._emit(res)
        if why:
            return self._closed(res, why, rule)
        judged = judge_worst_images(c, b, rule, target)
        unjudged = ""  # images the baseline has no value for: no rule judged them, so this check never passes
        if paired.unpaired and judged.verdict != "fail":
            judged.verdict = "needs-review"
            unjudged = ("; the rule cannot judge the images without a baseline value: a reviewer must look at them"
                        + ("" if rule.allow_review else " (the policy does not allow review)"))
        res.verdict, res.n, res.margin = judged.verdict, len(c), judged.margin
        res.diff_mean, res.images, res.worst_case = -judged.worst_loss, judged.images(), judged.worst_case
        if judged.worst_case:  # the means columns of a worst-images row: that image's values
            res.baseline_mean = judged.metric_value(b[judged.worst_case])
            res.candidate_mean = judged.metric_value(c[judged.worst_case])
        named = f"{'' if baseline.kind == 'run' else baseline.kind + ' '}run {baseline.run.run_id}"
        res.message = (f"{metric} ({target.phrase()}) worst images, candidate run {self.run.run_id} vs baseline "
                       f"{named} {paired.how}: {judged.text(unit)}{unjudged} -> {judged.verdict}")
        return self._emit(res)


def version_problem(metric: str, cand: MetricData, base: MetricData, baseline_run_id: str) -> str:
    """Why the candidate's and the baseline's values of ``metric`` are not comparable: computed by different
    versions of the metric (a method change, e.g. invented detail version 5 against 6, moves values with no change
    of the decoder); '' when both have the one same version (or a file that records none)."""
    known_c, known_b = cand.versions - {""}, base.versions - {""}
    if not known_c or not known_b or (len(known_c) == 1 and known_c == known_b):
        return ""
    return (f"{metric} values of different metric versions are not compared: the candidate's are version "
            f"{', '.join(sorted(known_c))}, baseline run {baseline_run_id}'s version {', '.join(sorted(known_b))}; "
            f"run that baseline's decoder again with this qa and approve the new run (docs/ci.md)")


def overall_verdict(results: list[CheckResult]) -> str:
    """``fail`` if any check failed, else ``needs-review`` if any needs review, else ``pass`` (skips ignored)."""
    verdicts = {r.verdict for r in results}
    if "fail" in verdicts:
        return "fail"
    if "needs-review" in verdicts:
        return "needs-review"
    return "pass"


def blocking(results: list[CheckResult]) -> bool:
    """Whether the results block a release (a fail, or a needs-review that its policy does not allow)."""
    return any(r.blocks for r in results)
