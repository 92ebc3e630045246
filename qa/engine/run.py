"""Running a decoder over a reference set: shards committed one transaction each, resumable.

A run is one decoder over one reference set with a list of seeds. Its cases are split into fixed shards (the
split is stored with the run); each finished shard commits its result rows, thumbnails and its ``shards`` row
in one transaction, so a run killed at any point resumes with ``resume_run`` and loses or doubles nothing.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import socket
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
from tqdm import tqdm

from qa import __version__
from qa.decoders.base import Decoder
from qa.engine.aggregate import bootstrap_mean_ci
from qa.engine.cases import Case, load_case
from qa.engine.identity import (
    MAX_SEEDS,
    base_identity_sha256,
    check_seeds,
    check_unique_ids,
    identity_changes,
    identity_fields,
)
from qa.engine.provenance import git_commit, identity_sha256
from qa.engine.shard import ShardOutput, ShardRunner, effective_seeds
from qa.errors import QAError, StoreError
from qa.metrics.base import ImageMetric, Metric, NotApplicable, SetMetric, not_applicable_text
from qa.refset.manifest import ReferenceSet, load_reference_set
from qa.store import Store

__all__ = ["MAX_SEEDS", "PreparedRun", "RunConfig", "RunEngine", "base_identity_sha256", "check_seeds",
           "identity_fields", "make_decoder", "make_metrics", "raise_with_run_id"]


@dataclass
class RunConfig:
    """Everything that decides a run. ``metrics`` None = every registered metric."""

    decoder: str
    reference_set: str = "default"
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    device: str = "cpu"
    batch_size: int | None = None
    shard_size: int = 8
    metrics: list[str] | None = None
    suite: str = ""
    thumbnails: bool = True
    progress: bool = True


def make_decoder(name: str, device: str = "cpu") -> Decoder:
    """Resolve a decoder name through the configuration (``qa.config``) or the registry."""
    try:
        from qa.config import make_decoder as configured
    except ImportError:
        from qa.registries import DECODERS

        return DECODERS.create(name, name=name, device=device)
    return configured(name, device=device)


def make_metrics(names: list[str] | None, store: Store | None = None, device: str = "cpu") -> list[Metric]:
    """Instantiate metrics by name (all registered ones when ``names`` is None).

    Metrics whose constructor takes ``store`` get it (their features go through the DuckDB feature cache, so
    reference features are computed once); those taking ``device`` run there."""
    from qa.registries import METRICS

    metrics = []
    for name in names if names is not None else METRICS.names():
        factory = METRICS.factory(name)
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        kwargs: dict[str, object] = {}
        if store is not None and "store" in params:
            kwargs["store"] = store
        if "device" in params:
            kwargs["device"] = device
        metrics.append(factory(**kwargs))
    return metrics


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


def _shards(cases: list[str], size: int) -> list[list[str]]:
    return [cases[i : i + size] for i in range(0, len(cases), max(1, size))]


class RunEngine:
    """Executes runs against a :class:`Store`. ``on_shard`` is called after each committed shard (tests)."""

    def __init__(self, store: Store, on_shard: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.on_shard = on_shard or (lambda i: None)

    # -- starting -------------------------------------------------------------------------------------------
    def start(self, config: RunConfig) -> str:
        """Create a run and execute it to the end; returns the run id."""
        run = self.create_run(config)
        self._execute(run)
        return run.run_id

    def create_run(self, config: RunConfig, decoder: Decoder | None = None) -> PreparedRun:
        """Validate ``config``, store the run row (status 'running') with its fixed shard split and the cases.

        ``decoder``: an already built instance to describe the run (default: built from ``config``); distributed
        engines pass one built on the driver's device, the workers build their own.
        """
        decoder = decoder or make_decoder(config.decoder, config.device)
        reason = decoder.unavailable_reason()
        if reason:
            raise QAError(f"decoder {config.decoder!r} cannot run here: {reason}")
        check_seeds(config.seeds)
        refset = load_reference_set(config.reference_set)
        check_unique_ids(refset)
        metrics = make_metrics(config.metrics, self.store, config.device)
        seeds = effective_seeds(decoder, config.seeds)
        fields = identity_fields(decoder, refset, metrics, seeds)
        run_id = f"{decoder.name}-{_now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        case_ids = [i.id for i in refset.items]
        cfg = asdict(config) | {"seeds": seeds, "shards": _shards(case_ids, config.shard_size),
                                "metrics": [m.name for m in metrics], "host": socket.gethostname(),
                                "metric_versions": {m.name: m.version for m in metrics},
                                "decoder_settings": fields["settings"],
                                "base_identity_sha256": base_identity_sha256(fields)}
        with self.store.transaction() as con:
            con.execute(
                "insert into runs values (?, ?, null, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null)",
                [run_id, _now(), config.suite, decoder.name, decoder.family, decoder.backend, decoder.track,
                 fields["weights_sha256"], fields["encoder_sha256"], refset.name, refset.sha256, json.dumps(seeds),
                 __version__, git_commit(), config.device, json.dumps(cfg, default=str), identity_sha256(fields),
                 len(cfg["shards"]), len(case_ids)],
            )
            for item in refset.items:
                con.execute(
                    "insert or ignore into cases values (?, ?, ?, ?, ?, ?, ?, null, null)",
                    [refset.sha256, item.id, refset.name, item.id, item.file, item.sha256, item.caption],
                )
        return PreparedRun(run_id, decoder, refset, metrics, cfg, config)

    def resume(self, run_id: str, device: str | None = None, progress: bool = True) -> str:
        """Finish an interrupted run: redo only the shards that were not committed."""
        self._execute(self.reopen_run(run_id, device=device, progress=progress))
        return run_id

    def reopen_run(self, run_id: str, device: str | None = None, progress: bool = True,
                   decoder: Decoder | None = None) -> PreparedRun:
        """Load a stored run to finish it (status back to 'running').

        Refuses (QAError with every reason) when the run's identity changed since it started: the decoder's
        weights, encoder or settings, the metrics or their versions, the seeds, the qa version or the reference
        set; resuming would mix rows of two different runs."""
        rows = self.store.query("select config_json, status, reference_set_sha256, weights_sha256, encoder_sha256, "
                                "seeds, qa_version, identity_sha256 from runs where run_id = ?", [run_id])
        if not rows:
            raise QAError(f"no run {run_id!r} in {self.store.path}", "list runs with `qa status` or check --db")
        cfg = json.loads(str(rows[0][0]))
        config = RunConfig(**{k: cfg[k] for k in RunConfig.__dataclass_fields__ if k in cfg})
        config.progress = progress
        if device:
            config.device = device
        decoder = decoder or make_decoder(config.decoder, config.device)
        refset = load_reference_set(config.reference_set)
        check_unique_ids(refset)
        metrics = make_metrics(cfg["metrics"], self.store, config.device)
        changed = identity_changes(rows[0], cfg, decoder, refset, metrics)
        if changed:
            raise QAError(f"run {run_id} cannot be resumed: " + "; ".join(changed),
                          "restore what changed, or start a new run (`qa run --decoder NAME`)")
        with self.store.transaction() as con:
            con.execute("update runs set status = 'running', finished_at = null where run_id = ?", [run_id])
        return PreparedRun(run_id, decoder, refset, metrics, cfg, config)

    # -- executing ------------------------------------------------------------------------------------------
    def done_shards(self, run_id: str) -> set[int]:
        """Indices of the shards of ``run_id`` already committed."""
        return {int(r[0]) for r in self.store.query(  # type: ignore[call-overload]
            "select shard_index from shards where run_id = ?", [run_id])}

    def _execute(self, run: PreparedRun) -> None:
        run_id, decoder, refset, cfg, config = run.run_id, run.decoder, run.refset, run.cfg, run.config
        done = self.done_shards(run_id)
        shards: list[list[str]] = cfg["shards"]
        items = {i.id: i for i in refset.items}
        encoder = decoder.encoder
        multiple = encoder.factor if encoder is not None else 1
        todo = [i for i in range(len(shards)) if i not in done]
        bar = tqdm(total=sum(len(shards[i]) for i in todo), desc=f"{decoder.name}", unit="case",
                   disable=not config.progress, file=sys.stderr, dynamic_ncols=True)
        runner = ShardRunner(decoder, run.metrics, cfg["seeds"], config.batch_size, config.thumbnails,
                             progress=bar.update)
        try:
            for index in todo:
                cases: list[Case] = [load_case(items[cid], multiple) for cid in shards[index] if cid in items]
                output = runner.run(cases)
                self.commit_shard(run_id, index, output)
                self.on_shard(index)
        except BaseException as exc:
            bar.close()
            self.mark_failed(run_id, exc)
            raise_with_run_id(run_id, exc)
            raise
        bar.close()
        self._finalize(run_id, runner, resumed=bool(done))

    def mark_failed(self, run_id: str, exc: BaseException) -> None:
        """Record that the run stopped ('interrupted' on Ctrl-C, else 'failed') with the error's text.

        Best effort: when the store itself is what failed (full disk, damaged file), nothing more can be written
        and the original error is what the caller re-raises."""
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]
        try:
            with self.store.transaction() as con:
                con.execute("update runs set status = ?, error = ? where run_id = ?", [status, text, run_id])
        except QAError as second:
            print(f"qa: could not mark run {run_id} {status}: {str(second).splitlines()[0]}", file=sys.stderr)

    def commit_shard(self, run_id: str, index: int, output: ShardOutput, worker: str = "") -> bool:
        """Write one shard's rows, images and ``shards`` row in one transaction.

        Returns False (and writes nothing) when the shard was committed already: nothing is counted twice.
        ``worker``: who computed it (default: this host and process).
        """
        with self.store.transaction() as con:
            if con.execute("select 1 from shards where run_id = ? and shard_index = ?", [run_id, index]).fetchone():
                return False  # another worker committed it already: nothing counted twice
            con.executemany(
                "insert into results values (?, ?, ?, ?, ?, ?, ?, ?)",
                [[run_id, r.case_id, r.seed, r.metric, r.value, r.status, r.detail, r.metric_version] for r in output.rows],
            )
            if output.images:
                con.executemany(
                    "insert or replace into images values (?, ?, ?, ?, ?)",
                    [[run_id, c, s, k, png] for c, s, k, png in output.images],
                )
            con.execute("insert into shards values (?, ?, ?, ?, ?)",
                        [run_id, index, output.n_cases, _now(), worker or f"{socket.gethostname()}:{os.getpid()}"])
        return True


    def _finalize(self, run_id: str, runner: ShardRunner, resumed: bool) -> None:
        self.finalize(run_id, runner.image_metrics, runner.set_metrics, resumed)

    def finalize(self, run_id: str, image_metrics: list[ImageMetric], set_metrics: list[SetMetric],
                 resumed: bool, set_rows_override: dict[str, list[object]] | None = None) -> None:
        """Set results: mean + bootstrap CI of every per-image metric, and each set metric's own value; marks
        the run finished. ``set_metrics`` must hold every output of the run (else pass ``resumed=True``);
        ``set_rows_override``: a ready ``set_results`` row per set metric name, used instead of computing it."""
        rows = self.store.query(
            # ordered, so the bootstrap interval does not depend on the order shards were committed in
            "select metric, case_id, value, status, detail from results where run_id = ? and metric != 'case' "
            "order by metric, case_id, seed", [run_id])
        # seeds of one case are not independent samples: average them per case, then bootstrap over cases
        per_case: dict[str, dict[str, list[float]]] = {}
        bad: dict[str, Counter[str]] = {}
        for metric, case_id, value, status, row_detail in rows:
            if status == "ok" and value is not None:
                per_case.setdefault(str(metric), {}).setdefault(str(case_id), []).append(float(value))  # type: ignore[arg-type]
            else:
                bad.setdefault(str(metric), Counter())[f"{status}: {_reason(str(row_detail or ''))}"] += 1
        by_metric = {m: [float(np.mean(v)) for v in cases.values()] for m, cases in per_case.items()}
        set_rows: list[list[object]] = []
        for m in image_metrics:
            vals = by_metric.get(m.name, [])
            reasons = bad.get(m.name, Counter())
            detail = ""
            if reasons:
                top = "; ".join(f"{n} x {r}" for r, n in reasons.most_common(3))
                detail = f"{sum(reasons.values())} rows missing or failed ({top})"
            if not vals:
                set_rows.append([run_id, m.name, None, None, None, 0, "missing", detail or "no values", m.version])
                continue
            mean, lo, hi = bootstrap_mean_ci(np.asarray(vals))
            set_rows.append([run_id, m.name, mean, _nan_none(lo), _nan_none(hi), len(vals), "ok", detail, m.version])
        for sm in set_metrics:
            override = (set_rows_override or {}).get(sm.name)
            set_rows.append(override if override is not None else self._set_metric_row(run_id, sm, resumed))
        with self.store.transaction() as con:
            con.execute("delete from set_results where run_id = ?", [run_id])
            if set_rows:
                con.executemany("insert into set_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)", set_rows)
            con.execute("update runs set status = 'finished', finished_at = ?, error = null where run_id = ?",
                        [_now(), run_id])

    @staticmethod
    def _set_metric_row(run_id: str, m: SetMetric, resumed: bool) -> list[object]:
        reason = m.unavailable_reason()
        if reason:
            return [run_id, m.name, None, None, None, 0, "missing", reason, m.version]
        if resumed:
            return [run_id, m.name, None, None, None, 0, "missing",
                    "run was resumed: this set metric needs every output in one process; rerun it whole", m.version]
        err = m.update_error
        if err:
            return [run_id, m.name, None, None, None, 0, "error", err, m.version]
        try:
            v = m.compute()
        except NotApplicable as exc:  # e.g. no reference images: missing with the reason, as for image metrics
            return [run_id, m.name, None, None, None, 0, "missing", not_applicable_text(exc), m.version]
        except Exception as exc:  # noqa: BLE001 - recorded, never raised
            return [run_id, m.name, None, None, None, 0, "error", f"{type(exc).__name__}: {exc}", m.version]
        return [run_id, m.name, v.value, _nan_none(v.ci_low), _nan_none(v.ci_high), v.n, "ok", v.detail, m.version]


def raise_with_run_id(run_id: str, exc: BaseException) -> None:
    """Re-raise a storage error (full disk, damaged file) naming the run and how to finish it; else return."""
    if isinstance(exc, StoreError):
        message = str(exc).split("\n  hint: ")[0]
        raise StoreError(f"run {run_id} stopped: {message}",
                         "fix that (free space, or restore the file from a backup); the shards committed so far are "
                         f"kept: finish the run with `qa run --resume {run_id}`") from exc


def _reason(detail: str) -> str:
    """A row's reason without the case id prefix, so identical reasons of different cases group together."""
    head = detail.splitlines()[0] if detail else "no detail"
    case, sep, rest = head.partition(": ")
    return rest if sep and " " not in case else head


def _nan_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x

