"""The logic behind ``pytest suites/ --decoder=NAME``, without pytest: the plugin only forwards to this.

A :class:`SuiteSession` turns the command-line options into runs (run now or reused), baselines and gate
objects; the checks tests make are collected and stored as one ``gates`` row per run and policy at the end.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from qa.decoders.base import Decoder
from qa.decoders.factory import make_decoder
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.gate.checks import Baseline, CheckResult, GateContext, direction_problem
from qa.gate.data import RunInfo, load_metric, load_run, run_settings, set_summary
from qa.gate.evaluate import (
    PLAIN,
    PLAIN_PREFIX,
    complete,
    decide,
    metrics_for,
    mismatch_text,
    plain_baseline,
    resolve_baseline,
)
from qa.gate.policy import Policy, default_policy_path, load_policy
from qa.gate.worse import image_lines
from qa.session.ci import StoredGate, gate_problem
from qa.store import Store


@dataclass
class SuiteOptions:
    """The plugin's options (``--decoder`` etc.). ``seeds``: number of seeds (0..N-1) for stochastic decoders."""

    decoder: str | None = None
    reference_set: str = "default"
    baseline: str = "approved"
    db: Path | None = None
    seeds: int = 2
    policy: Path | None = None
    device: str = "cpu"
    #: the trusted-keys file that verifies an ``approved`` or file baseline (None: $QA_TRUSTED_KEYS, the setting)
    trusted_keys: Path | None = None
    #: decode the candidate now even when a finished run with its identity is stored (``--fresh-run``)
    fresh_run: bool = False


@dataclass
class RunHandle:
    """What the ``qa_run`` fixture hands a test: the run (or why there is none) and accessors."""

    decoder: str
    run_id: str | None = None
    reused: bool = False
    info: RunInfo | None = None
    error: str = ""
    store: Store | None = None
    metrics: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # what pytest prints for a test's ``qa_run`` argument
        if not self.ok:
            return f"<no run of {self.decoder}: {self.error}>"
        return f"<run {self.run_id} of {self.decoder}{' (reused)' if self.reused else ''}>"

    @property
    def ok(self) -> bool:
        return self.run_id is not None and not self.error

    def _need(self) -> tuple[Store, str]:
        if not self.ok or self.store is None or self.run_id is None:
            raise AssertionError(f"no run of decoder {self.decoder!r}: {self.error}")
        return self.store, self.run_id

    def values(self, metric: str) -> dict[str, float]:
        """case id -> value (mean over seeds) of the cases with an ok value."""
        store, run_id = self._need()
        return load_metric(store, run_id, metric).per_case

    def set_results(self) -> list[tuple[str, float | None, float | None, float | None, int, str]]:
        """(metric, value, ci_low, ci_high, n, status) of every set result."""
        store, run_id = self._need()
        return set_summary(store, run_id)


class Gate:
    """The ``gate`` fixture: ``gate.metric("psnr").not_worse_than(baseline, margin=0.2)`` and friends.

    A check that fails (or needs review the policy does not allow) raises AssertionError with the check's
    message; a skipped check calls ``skip`` (pytest.skip in the plugin); a passing one returns its result.
    """

    def __init__(self, ctx: GateContext | None, error: str, skip: Callable[[str], NoReturn],
                 record: Callable[[CheckResult], None] | None = None) -> None:
        self.ctx = ctx
        self.error = error
        self._skip = skip
        self._record = record or (lambda r: None)

    def __repr__(self) -> str:  # what pytest prints for a test's ``gate`` argument
        if self.ctx is None:
            return f"<gate: {self.error}>"
        return f"<gate of run {self.ctx.run.run_id} ({self.ctx.run.decoder}) under {self.ctx.policy.source}>"

    @property
    def policy(self) -> Policy:
        if self.ctx is None:
            raise AssertionError(self.error)
        return self.ctx.policy

    def settle(self, res: CheckResult) -> CheckResult:
        """Turn a result into the test's outcome."""
        __tracebackhide__ = True  # a failure body shows the test's line and the message, not qa internals
        self._record(res)
        if res.verdict == "skipped":
            self._skip(res.message)
        if res.blocks:  # the check's message, then every image a worst-images check names
            raise AssertionError("\n".join([res.message] + image_lines(res.images, "  ")))
        return res

    def _context(self) -> GateContext:
        if self.ctx is None:
            raise AssertionError(self.error)
        return self.ctx

    def cases_ok(self) -> CheckResult:
        """Every case decoded and the run finished."""
        __tracebackhide__ = True
        return self.settle(self._context().cases_ok())

    def metric(self, name: str) -> MetricGate:
        """Checks on one metric."""
        return MetricGate(self, name)


class MetricGate:
    """Checks on one metric of the candidate run. Values, bounds and margins in the metric's units."""

    def __init__(self, gate: Gate, metric: str) -> None:
        self.gate = gate
        self.name = metric

    def at_least(self, value: float) -> CheckResult:
        """The set mean is >= ``value``."""
        __tracebackhide__ = True
        return self.gate.settle(self.gate._context().bound(self.name, float(value), None, "at_least"))

    def at_most(self, value: float) -> CheckResult:
        """The set mean is <= ``value``."""
        __tracebackhide__ = True
        return self.gate.settle(self.gate._context().bound(self.name, None, float(value), "at_most"))

    def within_bounds(self) -> CheckResult:
        """The policy's absolute bounds (min/max) on the set mean."""
        __tracebackhide__ = True
        ctx = self.gate._context()
        rule = ctx.policy.rule(self.name)
        return self.gate.settle(ctx.bound(self.name, rule.min, rule.max))

    def not_worse_than(self, baseline: Baseline, margin: float | None = None) -> CheckResult:
        """Paired comparison: pass when the interval of (candidate - baseline) clears ``-margin``.
        ``margin`` defaults to the policy's (``margin``/``relative_margin`` for run baselines, ``decoder_*`` for
        decoders)."""
        __tracebackhide__ = True
        if not isinstance(baseline, Baseline):
            raise TypeError(f"not_worse_than expects the qa_baseline fixture (a Baseline), got {type(baseline).__name__}")
        return self.gate.settle(self.gate._context().against(self.name, baseline, margin))

    def worst_images_not_worse_than(self, baseline: Baseline) -> CheckResult:
        """The policy's worst-images rule against ``baseline``: no image worse by more than its allowance, and
        the tail quantile not worse by more than the margin."""
        __tracebackhide__ = True
        return self.gate.settle(self.gate._context().worst_images(self.name, baseline))


class SuiteSession:
    """Everything one pytest session needs; kept in ``config.stash`` by the plugin."""

    def __init__(self, options: SuiteOptions) -> None:
        self.options = options
        self.store = Store(options.db)
        self.engine = RunEngine(self.store)
        self._decoders: dict[str, Decoder] = {}
        self._runs: dict[tuple[str, tuple[str, ...]], RunHandle] = {}
        self._contexts: dict[tuple[str, str], GateContext] = {}
        self._baselines: dict[tuple[str, str], list[Baseline]] = {}
        self._policies: dict[Path, Policy] = {}
        #: the gates :meth:`finish` stored (None until it ran) and its summary lines
        self.gates: list[StoredGate] | None = None
        self._lines: list[str] = []

    # -- decoder, policy, runs --------------------------------------------------------------------------------
    def decoder(self, name: str) -> Decoder:
        """The decoder ``name`` on the session's device, built once per session (raises when it cannot be)."""
        if name not in self._decoders:
            self._decoders[name] = make_decoder(name, self.options.device)
        return self._decoders[name]

    def decoder_track(self) -> str:
        """The candidate decoder's track; raises QAError when the decoder cannot be built."""
        if not self.options.decoder:
            raise QAError("no --decoder given")
        return self.decoder(self.options.decoder).track

    def _scale(self, name: str) -> int | None:
        try:
            return int(self.decoder(name).scale)
        except Exception:  # noqa: BLE001 - unknown scale: treated as not comparable
            return None

    def _load(self, path: Path) -> Policy:
        if path not in self._policies:
            self._policies[path] = load_policy(path)
        return self._policies[path]

    def policy_for(self, module_policy: Path | None) -> Policy:
        """--policy if given, else the module's policy file, else the shipped policy of the decoder's track.

        --policy replaces the policy of the modules gating the same track; a module of another track keeps its
        own (so it still skips for a decoder of another track).
        """
        own = self._load(Path(module_policy)) if module_policy else None
        if self.options.policy:
            override = self._load(Path(self.options.policy))
            return own if own is not None and own.track != override.track else override
        return own if own is not None else self._load(default_policy_path(self.decoder_track()))

    def _config(self, decoder: str, metrics: list[str]) -> RunConfig:
        return RunConfig(decoder=decoder, reference_set=self.options.reference_set,
                         seeds=list(range(max(1, self.options.seeds))), device=self.options.device,
                         metrics=metrics, suite="pytest", progress=False)

    @staticmethod
    def run_metrics(policy: Policy) -> list[str]:
        """The policy's metrics that are registered (the others are reported missing by the checks), and for a
        ``baseline_decoder = "plain"`` policy the plain-decode variant of each metric with a decoder rule."""
        names = policy.metric_names()
        if policy.baseline_decoder == PLAIN:
            names += [PLAIN_PREFIX + m for m in metrics_for(policy, "decoder_baseline")]
        return [m for m in names if not direction_problem(m)]

    def has_candidate(self, policy: Policy) -> bool:
        """Whether :meth:`candidate` for ``policy`` is already decided in this session (nothing to run)."""
        return (self.options.decoder or "", tuple(self.run_metrics(policy))) in self._runs

    def candidate(self, policy: Policy) -> RunHandle:
        """The candidate run for ``policy``'s metrics: reused when an identical finished run is stored."""
        decoder = self.options.decoder or ""
        metrics = self.run_metrics(policy)
        key = (decoder, tuple(metrics))
        if key not in self._runs:
            self._runs[key] = self._ensure(decoder, metrics, fresh=self.options.fresh_run)
        return self._runs[key]

    def _ensure(self, decoder: str, metrics: list[str], fresh: bool = False) -> RunHandle:
        """Reuse a finished run with the identity the config would get and no failed case
        (:func:`qa.engine.plan.find_reusable`), or run it now; ``fresh``: run it now in any case."""
        handle = RunHandle(decoder=decoder, store=self.store, metrics=metrics)
        try:
            config = self._config(decoder, metrics)
            if fresh:
                handle.run_id = self.engine.start(config, self.decoder(decoder))
            else:
                got = self.engine.ensure(config, self.decoder(decoder))
                handle.run_id, handle.reused = got.run_id, got.reused
            handle.info = load_run(self.store, handle.run_id)
        except QAError as exc:
            handle.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a decoder that cannot run fails the tests, never pytest
            handle.error = f"{type(exc).__name__}: {exc}"
        return handle

    def decoder_baseline(self, run: RunHandle, policy: Policy) -> Baseline | None:
        """The policy's decoder baseline as ``qa gate`` resolves it (:func:`qa.gate.evaluate.decoder_baseline`),
        but run (or reused) now when the store has no run of it; None when the policy names none or the candidate."""
        name = policy.baseline_decoder
        if not name or name == run.decoder:
            return None
        if not run.ok or run.info is None:
            return Baseline(f"decoder:{name}", None, f"no candidate run: {run.error}")
        if name == PLAIN:  # the candidate's own plain decode, in its own run: nothing else to run
            return plain_baseline(run.info)
        mine, theirs = self._scale(run.decoder), self._scale(name)
        why = "" if mine == theirs else mismatch_text(run.decoder, mine, name, theirs)  # unknown: not comparable
        if why:
            return Baseline(f"decoder:{name}", None, why, inapplicable=why)
        return self.baseline(f"decoder:{name}", run)

    def baseline(self, spec: str, run: RunHandle) -> Baseline:
        """Resolve a baseline spec for ``run``; a ``decoder:NAME`` baseline is run (or reused) when missing."""
        if not run.ok or run.info is None:
            return Baseline(spec, None, f"no candidate run: {run.error}")
        try:
            if spec.startswith("decoder:"):
                name = spec.split(":", 1)[1].strip()
                if name and name != run.decoder and resolve_baseline(self.store, run.info, spec).run is None:
                    other = self._ensure(name, run.metrics)
                    if not other.ok:
                        return Baseline(spec, None, f"decoder {name!r} could not be run: {other.error}")
            return resolve_baseline(self.store, run.info, spec, self.options.trusted_keys)
        except QAError as exc:  # no approved run, a chain or file that does not verify, an unknown run: every
            return Baseline(spec, None, error=str(exc))  # comparison with it fails with the reason

    def gate(self, run: RunHandle, policy: Policy, skip: Callable[[str], NoReturn],
             record: Callable[[CheckResult], None] | None = None) -> Gate:
        """A :class:`Gate` on ``run`` under ``policy`` whose results are stored at :meth:`finish`."""
        if not run.ok or run.info is None:
            return Gate(None, f"decoder {run.decoder!r} produced no run: {run.error}", skip, record)
        key = (run.info.run_id, policy.sha256())
        if key not in self._contexts:
            self._contexts[key] = GateContext(self.store, run.info, policy)
            for b in self._baselines.get(key, []):
                self._contexts[key].read_from(b)
        return Gate(self._contexts[key], "", skip, record)

    def note_baseline(self, run: RunHandle, policy: Policy, baseline: Baseline) -> None:
        """Remember a baseline a test used, for the stored gate row."""
        if run.info is None:
            return
        key = (run.info.run_id, policy.sha256())
        lst = self._baselines.setdefault(key, [])
        if all(b.kind != baseline.kind for b in lst):
            lst.append(baseline)
        if key in self._contexts:
            self._contexts[key].read_from(baseline)

    def finish(self) -> tuple[list[str], bool]:
        """Store one gate row per (run, policy) that had checks (once: later calls return the same); returns
        summary lines and whether any stored gate is partial (not every check of its policy ran: ``-k``, ``-m``,
        ``--deselect``, one file of the suites). A partial gate decides nothing: its line says so and the session
        fails (see the plugin). :attr:`gates` holds what was stored."""
        if self.gates is not None:
            return self._lines, any(not g.complete for g in self.gates)
        self.gates = []
        for key, ctx in self._contexts.items():
            if not ctx.results:
                continue
            noted = self._baselines.setdefault(key, [])
            if not any(not b.is_decoder for b in noted):  # --baseline, asked for or not: deselected tests = partial
                handle = RunHandle(decoder=ctx.run.decoder, run_id=ctx.run.run_id, info=ctx.run, store=self.store)
                noted.append(self.baseline(self.options.baseline, handle))
            ctx.policies_of(noted)  # whatever the policy's rules (a policy with none against a baseline)
            baselines = sorted(noted, key=lambda b: b.is_decoder)
            outcome = decide(self.store, ctx.run, ctx.policy, baselines, ctx.results)
            whole = complete(ctx.policy, baselines, ctx.results, ctx.run)
            self.gates.append(StoredGate(outcome, whole))
            notes = outcome.notes
            self._lines.append(f"qa gate {outcome.gate_id}: {outcome.verdict}" + ("" if whole else
                               " (partial: not every check of the policy ran; this gate decides nothing and unlocks "
                               "no approval: run the suites without -k/-m/--deselect)")
                               + f" for run {ctx.run.run_id} ({ctx.run.decoder}) under {ctx.policy.source}"
                               + "".join(f"; {n}" for n in notes))
        return self._lines, any(not g.complete for g in self.gates)

    def gate_problem(self) -> str:
        """Why this session's gate decides nothing, '' when it does (call after :meth:`finish`)."""
        errors = [f"decoder {h.decoder!r} produced no run: {h.error}" for h in self._runs.values() if h.error]
        return gate_problem(self.gates or [], errors)


def metric_properties(run: RunHandle) -> list[tuple[str, str]]:
    """(name, value) pairs for JUnit XML: the run and every metric's set value with its interval and n."""
    props = [("qa.decoder", run.decoder), ("qa.run_id", run.run_id or ""), ("qa.reused", str(run.reused))]
    if not run.ok or run.store is None or run.run_id is None:
        return props + [("qa.error", run.error)]
    settings = run_settings(run.store, run.run_id)
    props.append(("qa.settings", json.dumps(settings, sort_keys=True, default=str) if settings is not None
                  else "not recorded"))
    for metric, value, lo, hi, n, status in run.set_results():
        props.append((f"qa.metric.{metric}", _num(value) if status == "ok" else status))
        props.append((f"qa.metric.{metric}.ci", f"[{_num(lo)}, {_num(hi)}]"))
        props.append((f"qa.metric.{metric}.n", str(n)))
    return props


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return repr(float(x))
