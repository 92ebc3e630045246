"""Running a decoder over a reference set: shards committed one transaction each, resumable.

A run is one decoder over one reference set with a list of seeds. Its cases are split into fixed shards (the
split is stored with the run); each finished shard commits its result rows, thumbnails and its ``shards`` row
in one transaction, so a run killed at any point resumes with ``resume_run`` and loses or doubles nothing.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from qa import __version__
from qa.averaging import set_interval
from qa.decoders.base import Decoder
from qa.decoders.factory import make_decoder
from qa.engine.cases import Case, load_case
from qa.engine.identity import (
    base_identity_sha256,
    check_unique_ids,
    identity_changes,
)
from qa.engine.lifecycle import RunLeftAlone, RunLifecycle, raise_with_run_id, resume_refusal, sigterm_interrupts
from qa.engine.pixels import KEEP_LATEST, stored_references
from qa.engine.plan import (
    EnsuredRun,
    RunConfig,
    RunPlan,
    find_reusable,
    make_metrics,
    plan_run,
)
from qa.engine.provenance import git_commit, identity_sha256
from qa.engine.shard import ShardOutput, ShardRunner
from qa.engine.shard_features import ShardFeatures
from qa.errors import QAError
from qa.metrics.base import ImageMetric, Metric, NotApplicable, SetMetric, not_applicable_text
from qa.plain_text import escaped, raw_stream
from qa.refset.manifest import ReferenceSet, load_reference_set
from qa.store import Store
from qa.store import pixels as store_pixels
from qa.store import results as store_results
from qa.store import runs as store_runs
from qa.store.records import CaseRecord, NewRun, SetResult, nan_none

__all__ = ["PreparedRun", "RunConfig", "RunEngine", "RunLeftAlone", "raise_with_run_id", "sigterm_interrupts"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class PreparedRun:
    """A stored run ready to execute: what :meth:`RunEngine.create_run` / :meth:`RunEngine.reopen_run` return."""

    run_id: str
    decoder: Decoder
    refset: ReferenceSet
    metrics: list[Metric]
    cfg: dict  # the stored config_json: RunConfig fields + seeds, shards, metrics, host
    config: RunConfig
    resumed: bool = False  # reopened by reopen_run: yields the run to another process seen writing it


@contextmanager
def above_bar() -> Iterator[None]:
    """Python warnings and log records written with ``tqdm.write`` while a progress bar runs: each on its own line
    above the bar, never interleaved with it."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
        tqdm.write(escaped(text, keep="\n\t"), file=raw_stream(sys.stderr))  # the bar's own stream, so it is cleared

    # the root logger and every library logger with a console handler of its own (diffusers, transformers)
    loggers = [logging.root] + [lg for lg in logging.root.manager.loggerDict.values()
                                if isinstance(lg, logging.Logger) and any(
                                    isinstance(h, logging.StreamHandler) for h in lg.handlers)]
    with warnings.catch_warnings(), logging_redirect_tqdm(loggers):
        warnings.showwarning = show
        yield


def _shards(cases: list[str], size: int) -> list[list[str]]:
    return [cases[i : i + size] for i in range(0, len(cases), max(1, size))]


class RunEngine:
    """Executes runs against a :class:`Store`. ``on_shard`` is called after each committed shard (tests)."""

    def __init__(self, store: Store, on_shard: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.on_shard = on_shard or (lambda i: None)
        self.lifecycle = RunLifecycle(store)

    # -- starting -------------------------------------------------------------------------------------------
    def start(self, config: RunConfig, decoder: Decoder | None = None) -> str:
        """Create a run and execute it to the end; returns the run id. ``decoder``: an already built instance."""
        with self.lifecycle.guard():  # from before the run row is stored to after its set results are
            run = self.create_run(config, decoder)
            self.run_prepared(run)
        return run.run_id

    def plan(self, config: RunConfig, decoder: Decoder | None = None) -> RunPlan:
        """Validate ``config`` and build its decoder (unless given), reference set and metrics, once."""
        return plan_run(config, self.store, decoder)

    def ensure(self, config: RunConfig, decoder: Decoder | None = None) -> EnsuredRun:
        """Reuse a finished run with the identity ``config`` would get (same decoder weights and settings,
        reference set, seeds, qa's and the decoder's code, and every metric at the same version), or run it now.
        Raises QAError if it cannot run. ``decoder``: an already built instance (the session's), else built here
        once."""
        with self.lifecycle.guard():
            plan = self.plan(config, decoder)
            found = find_reusable(self.store, plan.identity)
            if found:
                return EnsuredRun(found, True)
            run = self.create_run(config, plan=plan)
            self.run_prepared(run)
        return EnsuredRun(run.run_id, False)

    def create_run(self, config: RunConfig, decoder: Decoder | None = None, plan: RunPlan | None = None
                   ) -> PreparedRun:
        """Validate ``config``, store the run row (status 'running') with its fixed shard split and the cases.

        ``decoder``: an already built instance to describe the run (default: built from ``config``); distributed
        engines pass one built on the driver's device, the workers build their own. ``plan``: an existing plan
        of ``config`` (its decoder, reference set and metrics are used as they are).
        """
        plan = plan or self.plan(config, decoder)
        decoder, refset, metrics, seeds, fields = plan.decoder, plan.refset, plan.metrics, plan.seeds, plan.fields
        run_id = f"{decoder.name}-{_now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        case_ids = [i.id for i in refset.items]
        cfg = asdict(config) | {"seeds": seeds, "shards": _shards(case_ids, config.shard_size),
                                "metrics": [m.name for m in metrics], "host": socket.gethostname(),
                                "metric_versions": {m.name: m.version for m in metrics},
                                "decoder_settings": fields["settings"], "reference_set_kinds": refset.kinds,
                                "stochastic": bool(decoder.stochastic),
                                "base_identity_sha256": base_identity_sha256(fields),
                                "code_sha256": fields["code_sha256"]}
        self.lifecycle.live = run_id  # from here on a stop marks it (a guard around this call records it)
        try:
            store_runs.insert_run(self.store, NewRun(
                run_id=run_id, started_at=_now(), suite=config.suite, decoder=decoder.name, family=decoder.family,
                backend=decoder.backend, track=decoder.track, weights_sha256=str(fields["weights_sha256"]),
                encoder_sha256=str(fields["encoder_sha256"]), reference_set=refset.name,
                reference_set_sha256=refset.sha256, seeds=seeds, qa_version=__version__, git_commit=git_commit(),
                device=config.device, config=cfg, identity_sha256=identity_sha256(fields),
                n_shards=len(cfg["shards"]), n_cases=len(case_ids), scale=int(decoder.scale)),
                [CaseRecord(refset.sha256, item.id, refset.name, item.id, item.file, item.sha256, item.caption)
                 for item in refset.items])
        except Exception:  # not stored, or the store is what failed (damaged, full): its own error, nothing to mark
            self.lifecycle.live = None
            raise
        return PreparedRun(run_id, decoder, refset, metrics, cfg, config)

    def resume(self, run_id: str, device: str | None = None, progress: bool = True) -> str:
        """Finish an interrupted run: redo only the shards that were not committed."""
        with self.lifecycle.guard():
            self.run_prepared(self.reopen_run(run_id, device=device, progress=progress))
        return run_id

    def reopen_run(self, run_id: str, device: str | None = None, progress: bool = True,
                   decoder: Decoder | None = None) -> PreparedRun:
        """Load a stored run to finish it (status back to 'running').

        Refuses (QAError with every reason) when the run's identity changed since it started: the decoder's
        weights, encoder or settings, the metrics or their versions, the seeds, the qa version, qa's or the decoder's
        code (``code_sha256``) or the reference set; resuming would mix rows of two different runs. Refuses
        (RunLeftAlone) a run that is finished or approved: that would change signed evidence."""
        # checked again when claimed, after the decoder is built
        refusal = resume_refusal(run_id, self.store, store_runs.state_of(self.store, run_id))
        stored = store_runs.resume_row(self.store, run_id)
        if refusal is not None or stored is None:
            raise refusal or QAError(f"no run {run_id!r} in {self.store.path}")
        cfg = json.loads(stored.config_json)
        config = RunConfig(**{k: cfg[k] for k in RunConfig.__dataclass_fields__ if k in cfg})
        config.progress = progress
        if device:
            config.device = device
        decoder = decoder or make_decoder(config.decoder, config.device, **config.settings)
        refset = load_reference_set(config.reference_set)
        check_unique_ids(refset)
        metrics = make_metrics(cfg["metrics"], self.store, config.device)
        changed = identity_changes(stored, cfg, decoder, refset, metrics)
        if changed:
            raise QAError(f"run {run_id} cannot be resumed: " + "; ".join(changed),
                          "restore what changed, or start a new run (`qa run --decoder NAME`)")
        self.lifecycle.claim(run_id)  # refused if it was finished or approved meanwhile
        return PreparedRun(run_id, decoder, refset, metrics, cfg, config, resumed=True)

    # -- executing ------------------------------------------------------------------------------------------
    def done_shards(self, run_id: str) -> set[int]:
        """Indices of the shards of ``run_id`` already committed."""
        return store_results.done_shards(self.store, run_id)

    def run_prepared(self, run: PreparedRun) -> None:
        """Execute the uncommitted shards of a prepared run, then its set results. Ctrl-C, SIGTERM or an error at
        any point marks it interrupted or failed and says how to finish it (:meth:`RunLifecycle.guard`)."""
        with self.lifecycle.guard():
            self.lifecycle.live = run.run_id
            self._score_and_finish(run)

    def _score_and_finish(self, run: PreparedRun) -> None:
        run_id, decoder, refset, cfg, config = run.run_id, run.decoder, run.refset, run.cfg, run.config
        done = self.done_shards(run_id)
        shards: list[list[str]] = cfg["shards"]
        items = {i.id: i for i in refset.items}
        encoder = decoder.encoder
        multiple = encoder.factor if encoder is not None else 1
        todo = [i for i in range(len(shards)) if i not in done]
        total = sum(len(shards[i]) for i in todo)
        # the id to resume with, before anything can stop the run (stdout keeps one run id a line, at the end)
        print(f"qa: run {run_id} ({decoder.name}): {total} case(s) in {len(todo)} shard(s) to do", file=sys.stderr,
              flush=True)
        bar = tqdm(total=total, desc=f"{decoder.name}", unit="case", disable=not config.progress,
                   file=raw_stream(sys.stderr), dynamic_ncols=True)
        shown = {"shard": "", "note": " (a machine's first run also compiles the CPU kernels here: about a minute)"}

        def stage(what: str) -> None:  # what a shard is doing while no case finishes (2K-4K decodes take minutes)
            bar.set_postfix_str(f"{shown['shard']}: {what}" + (shown["note"] if what == "scoring" else ""))

        def progressed(n: int) -> None:
            if shown["note"]:  # a case was scored: the kernels are compiled
                shown["note"] = ""
                bar.set_postfix_str(f"{shown['shard']}: scoring", refresh=False)
            bar.update(n)

        try:
            runner = ShardRunner(decoder, run.metrics, cfg["seeds"], config.batch_size, config.thumbnails,
                                 progress=progressed, stage=stage)
            with above_bar():  # warnings on their own lines
                # the store is not opened while a shard is scored (see qa.engine.shard_features)
                features = ShardFeatures(self.store, [*runner.image_metrics, *runner.set_metrics])
                for index in todo:
                    shown["shard"] = f"shard {index + 1}/{len(shards)}"
                    cases: list[Case] = [load_case(items[cid], multiple) for cid in shards[index] if cid in items]
                    features.fetch(cases)
                    if config.thumbnails and decoder.reference_aligned:  # references whose tiles are stored
                        runner.stored_references = stored_references(self.store, {c.case_id: c.pixels for c in cases})
                    output = runner.run(cases)
                    if not self.commit_shard(run_id, index, output):  # not in `done`: another process is writing
                        self.lifecycle.other_writer(run_id, index, run.resumed)
                    features.store_new()
                    self.on_shard(index)
        finally:
            bar.close()
        self._finalize(run_id, runner, resumed=bool(done))

    def mark_failed(self, run_id: str, exc: BaseException) -> None:
        """Record that the run stopped ('interrupted' on Ctrl-C, else 'failed') with the error's text, unless it
        is no longer this process's to change (finished or stopped elsewhere, approved); says which on stderr."""
        self.lifecycle.mark_stopped(run_id, exc)

    def commit_shard(self, run_id: str, index: int, output: ShardOutput, worker: str = "") -> bool:
        """Write one shard's rows, images and ``shards`` row in one transaction.

        Returns False (and writes nothing) when the shard was committed already: nothing is counted twice.
        ``worker``: who computed it (default: this host and process).
        """
        return store_results.commit_shard(self.store, run_id, index, output.rows, output.images, output.n_cases,
                                          worker, regions=output.regions, tiled=output.tiled)


    def _finalize(self, run_id: str, runner: ShardRunner, resumed: bool) -> None:
        self.finalize(run_id, runner.image_metrics, runner.set_metrics, resumed)

    def finalize(self, run_id: str, image_metrics: list[ImageMetric], set_metrics: list[SetMetric],
                 resumed: bool, set_rows_override: dict[str, SetResult] | None = None) -> None:
        """Set results: mean + bootstrap CI of every per-image metric, and each set metric's own value; marks
        the run finished. ``set_metrics`` must hold every output of the run (else pass ``resumed=True``);
        ``set_rows_override``: a ready set result per set metric name, used instead of computing it."""
        # ordered, so the bootstrap interval does not depend on the order shards were committed in
        rows = store_results.image_metric_rows(self.store, run_id)
        # seeds of one case are not independent samples: average them per case, then bootstrap over cases
        per_case: dict[str, dict[str, list[float]]] = {}
        bad: dict[str, Counter[str]] = {}
        for row in rows:
            if row.status == "ok" and row.value is not None:
                per_case.setdefault(row.metric, {}).setdefault(row.case_id, []).append(row.value)
            else:
                bad.setdefault(row.metric, Counter())[f"{row.status}: {_reason(row.detail)}"] += 1
        set_rows: list[SetResult] = []
        for m in image_metrics:
            cases = per_case.get(m.name, {})
            reasons = bad.get(m.name, Counter())
            detail = ""
            if reasons:
                top = "; ".join(f"{n} x {r}" for r, n in reasons.most_common(3))
                detail = f"{sum(reasons.values())} rows missing or failed ({top})"
            if not cases:
                set_rows.append(SetResult.missing(run_id, m.name, "missing", detail or "no values", m.version))
                continue
            iv = set_interval(cases, m.averaged)  # averaged as the metric declares (PSNR in noise power)
            lo, hi = (iv.low, iv.high) if len(cases) >= 2 else (None, None)  # one case: a value, no interval
            set_rows.append(SetResult(run_id, m.name, iv.mean, nan_none(lo), nan_none(hi), len(cases), "ok", detail,
                                      m.version))
        for sm in set_metrics:
            override = (set_rows_override or {}).get(sm.name)
            set_rows.append(override if override is not None else self.set_metric_result(run_id, sm, resumed))
        if not self.lifecycle.finish(run_id, set_rows):  # finished by another process first: left as it is
            return
        try:
            store_pixels.prune(self.store, KEEP_LATEST)  # bounded: older runs' full-resolution tiles go
        except BaseException:
            print(f"qa: run {run_id} finished; stopped while removing older runs' full-resolution tiles (they are "
                  "removed after the next run)", file=sys.stderr)
            raise

    @staticmethod
    def set_metric_result(run_id: str, m: SetMetric, resumed: bool) -> SetResult:
        """The set result of a set metric that saw every output of the run (or why it has none)."""
        reason = m.unavailable_reason()
        if reason:
            return SetResult.missing(run_id, m.name, "missing", reason, m.version)
        if resumed:
            return SetResult.missing(run_id, m.name, "missing", "run was resumed: this set metric needs every "
                                     "output in one process; rerun it whole", m.version)
        err = m.update_error
        if err:
            return SetResult.missing(run_id, m.name, "error", err, m.version)
        try:
            v = m.compute()
        except NotApplicable as exc:  # e.g. no reference images: missing with the reason, as for image metrics
            return SetResult.missing(run_id, m.name, "missing", not_applicable_text(exc), m.version)
        except Exception as exc:  # noqa: BLE001 - recorded, never raised
            return SetResult.missing(run_id, m.name, "error", f"{type(exc).__name__}: {exc}", m.version)
        return SetResult(run_id, m.name, v.value, nan_none(v.ci_low), nan_none(v.ci_high), v.n, "ok", v.detail,
                         m.version)


def _reason(detail: str) -> str:
    """A row's reason without the case id prefix, so identical reasons of different cases group together."""
    head = detail.splitlines()[0] if detail else "no detail"
    case, sep, rest = head.partition(": ")
    return rest if sep and " " not in case else head

