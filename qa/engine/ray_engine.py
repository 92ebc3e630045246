"""Running a run's shards on Ray (``qa run --engine ray``): same store, same shards, same results as local.

This module is the driver (the ``qa run`` process); the actors' side is :mod:`qa.engine.ray_worker`. The driver
creates the run exactly like the local engine (same fixed shard split in ``runs.config_json``), then hands
shards to a pool of Ray actors, one per worker. Each actor builds the decoder
and the metrics once and runs many shards with the same :class:`~qa.engine.shard.ShardRunner` the local engine
uses; it returns each shard's :class:`~qa.engine.shard.ShardOutput` through Ray's object store. Only the driver
opens the DuckDB file: it commits each returned shard in one transaction (``RunEngine.commit_shard``, which
skips a shard committed already), so a retried shard is never counted twice.

Failures: an actor that dies mid-shard is restarted by Ray (``max_restarts``) and the driver resubmits its
shards, at most ``max_retries`` extra attempts per shard. A run whose driver dies keeps its committed shards;
``qa run --engine ray --resume ID`` (or the local engine's ``--resume``) redoes only the others.

Set metrics (FID-like) need every output of the run. A set metric that can export a partial state per shard
and merge such states (:attr:`~qa.metrics.base.SetMetric.mergeable`: it overrides ``export_state`` and
``merge_state``, declared on :class:`~qa.metrics.base.SetMetric`) is computed by
the driver from the states of the shards it committed, merged in shard order; any other set metric is stored
as 'missing' with the reason, never computed from a part of the set. After a resume, set metrics are
'missing' exactly as with the local engine.

Feature cache: workers never open the store. The driver ships the cached feature vectors of the run's references
(``ray.put`` once) and each metric's ``CachedExtractor`` in a worker reads them through a
:class:`ShippedFeatureCache`; the vectors a worker computes come back with its shard and the driver stores them.

Ray is optional: ``pip install 'qa[ray]'``. See docs/scaling.md for the multi-node plan.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from qa.decoders.factory import make_decoder
from qa.engine.ray_worker import ShardResult, ShardWorker, WorkerSpec, can_merge
from qa.engine.run import PreparedRun, RunConfig, RunEngine, raise_with_run_id, sigterm_interrupts
from qa.errors import QAError
from qa.metrics.base import ImageMetric, SetMetric
from qa.plain_text import raw_stream
from qa.refset.manifest import ReferenceItem
from qa.settings import WORKERS_ENV, get_settings
from qa.store import Store
from qa.store.features import FeatureKey, features_of_images, put_feature_groups
from qa.store.records import SetResult
from qa.store.runs import run_config

INSTALL_HINT = "pip install 'qa[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`QAError` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise QAError(f"--engine ray needs Ray, which is not installed here ({exc})", INSTALL_HINT) from exc
    return ray


@dataclass
class RayOptions:
    """How the shards are spread.

    ``num_workers``: actors in the pool (default: $QA_RAY_WORKERS, else one per GPU with ``--device cuda`` or
    one per ``cpus_per_worker`` CPUs of the cluster; never more than the shards left).
    ``max_retries``: extra attempts of a shard whose worker died, and restarts of each actor.
    ``inflight_per_worker``: shards queued on each actor at once (2 hides the driver's commit time).
    ``worker_setup``: a picklable callable run first in every actor (registering plugins, test decoders).
    ``on_shard``: called on the driver with each committed shard index. ``on_retry``: with (shard, reason).
    """

    address: str | None = None
    num_workers: int | None = None
    cpus_per_worker: float = 1.0
    max_retries: int = 3
    inflight_per_worker: int = 2
    worker_setup: Callable[[], None] | None = None
    on_shard: Callable[[int], None] | None = None
    on_retry: Callable[[int, str], None] | None = None


def cached_reference_features(store: Store, image_shas: list[str]) -> dict[FeatureKey, dict[str, np.ndarray]]:
    """Every cached vector of these images (any extractor), grouped by extractor key: what the workers get."""
    return features_of_images(store, image_shas)


def store_features(store: Store, features: list[tuple[FeatureKey, dict[str, np.ndarray]]]) -> None:
    """Insert (or replace) vectors computed by a worker into the ``features`` table, in one transaction."""
    put_feature_groups(store, features)


# -- driver ---------------------------------------------------------------------------------------------------
def start(store: Store, config: RunConfig, address: str | None = None, **options: Any) -> str:
    """Create a run like the local engine and execute its shards on Ray; returns the run id."""
    opts = RayOptions(address=address, **options)
    ray = import_ray()
    engine = RunEngine(store)
    run = engine.create_run(config, decoder=make_decoder(config.decoder, "cpu"))
    _run_on_ray(ray, engine, run, opts)
    return run.run_id


def resume(store: Store, run_id: str, address: str | None = None, device: str | None = None,
           progress: bool = True, **options: Any) -> str:
    """Finish an interrupted run (started by either engine) on Ray: only uncommitted shards are redone."""
    opts = RayOptions(address=address, **options)
    ray = import_ray()
    engine = RunEngine(store)
    cfg = run_config(store, run_id)
    if cfg is None:
        raise QAError(f"no run {run_id!r} in {store.path}", "list runs with `qa status` or check --db")
    name = str(cfg.get("decoder", ""))
    run = engine.reopen_run(run_id, device=device, progress=progress, decoder=make_decoder(name, "cpu"))
    _run_on_ray(ray, engine, run, opts)
    return run_id


def _init_ray(ray: Any, opts: RayOptions) -> bool:
    """Connect to ``opts.address`` or start a local cluster; returns whether this call started the session."""
    if ray.is_initialized():
        return False
    try:
        if opts.address:
            ray.init(address=opts.address, ignore_reinit_error=True)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, ignore_reinit_error=True)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError, ...
        where = f"the Ray cluster at {opts.address}" if opts.address else "a local Ray cluster"
        raise QAError(f"cannot start or join {where}: {type(exc).__name__}: {exc}",
                      "check --address (e.g. ray://head:10001 or auto) and `ray status`") from exc
    return True


def _pool_size(ray: Any, device: str, opts: RayOptions, n_shards: int) -> int:
    if opts.num_workers is not None:
        wanted = int(opts.num_workers)
    elif get_settings().ray_workers is not None:
        wanted = int(get_settings().ray_workers or 0)
    else:
        res = ray.cluster_resources()
        if device.startswith("cuda"):
            wanted = int(res.get("GPU", 0))
            if wanted < 1:
                raise QAError("--device cuda on Ray, but the cluster has no GPU", "use --device cpu, or add GPU nodes")
        else:
            wanted = int(res.get("CPU", 1) // max(opts.cpus_per_worker, 1e-9))
    if wanted < 1:
        raise QAError(f"number of Ray workers must be >= 1, got {wanted}", f"set ${WORKERS_ENV} or num_workers")
    return max(1, min(wanted, n_shards))


def _retriable(ray: Any) -> tuple[type[BaseException], ...]:
    ex = ray.exceptions
    names = ("RayActorError", "WorkerCrashedError", "ObjectLostError", "NodeDiedError", "OwnerDiedError")
    return tuple(getattr(ex, n) for n in names if hasattr(ex, n))


def _run_on_ray(ray: Any, engine: RunEngine, run: PreparedRun, opts: RayOptions) -> None:
    """Run the uncommitted shards of ``run`` on an actor pool and commit each on the driver; then finalize."""
    started_here = False
    actors: list[Any] = []
    bar = None
    try:
        shards: list[list[str]] = run.cfg["shards"]
        done = engine.done_shards(run.run_id)
        todo = [i for i in range(len(shards)) if i not in done]
        started_here = _init_ray(ray, opts) if todo else False
        items = {i.id: i for i in run.refset.items}
        image_metrics = [m for m in run.metrics if isinstance(m, ImageMetric)]
        set_metrics = [m for m in run.metrics if isinstance(m, SetMetric)]
        states: dict[int, ShardResult] = {}
        if todo:
            n = _pool_size(ray, run.config.device, opts, len(todo))
            gpus = 1 if run.config.device.startswith("cuda") else 0
            # set metrics that cannot merge are stored as missing: do not spend worker time on their updates
            # nor on those whose weights are absent: stored as missing with the reason
            worker_metrics = [m.name for m in run.metrics
                              if isinstance(m, ImageMetric) or (can_merge(m) and not m.unavailable_reason())]
            spec = WorkerSpec(run.config.decoder, run.config.device, worker_metrics,
                              list(run.cfg["seeds"]), run.config.batch_size, run.config.thumbnails, opts.worker_setup)
            actor_cls = ray.remote(ShardWorker).options(
                num_cpus=opts.cpus_per_worker, num_gpus=gpus, max_restarts=opts.max_retries, max_task_retries=0)
            refs = [items[c].sha256 for i in todo for c in shards[i] if c in items and items[c].sha256]
            shipped = ray.put(cached_reference_features(engine.store, refs))  # one copy per node, read by all
            actors = [actor_cls.remote(spec, shipped) for _ in range(n)]
            try:
                ray.get([a.ping.remote() for a in actors])
            except Exception as exc:  # noqa: BLE001 - an error in the actors' constructor
                raise QAError(f"Ray workers could not start for decoder {run.config.decoder!r}: {exc}") from exc
            bar = tqdm(total=sum(len(shards[i]) for i in todo), desc=f"{run.decoder.name} (ray x{n})", unit="case",
                       disable=not run.config.progress, file=raw_stream(sys.stderr), dynamic_ncols=True)
            with sigterm_interrupts():  # a cancelled CI job marks the run interrupted, as on a single machine
                states = _drive(ray, engine, run, opts, actors, todo, shards, items, bar)
        overrides = _set_rows(engine, run.run_id, set_metrics, states, todo, resumed=bool(done))
        engine.finalize(run.run_id, image_metrics, set_metrics, resumed=bool(done), set_rows_override=overrides)
    except BaseException as exc:
        engine.mark_failed(run.run_id, exc)
        raise_with_run_id(run.run_id, exc)
        raise
    finally:
        if bar is not None:
            bar.close()
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001, S110 - already dead
                pass
        if started_here:
            ray.shutdown()


def _drive(ray: Any, engine: RunEngine, run: PreparedRun, opts: RayOptions, actors: list[Any], todo: list[int],
           shards: list[list[str]], items: dict[str, ReferenceItem], bar: Any) -> dict[int, ShardResult]:
    """The scheduling loop: keep every live actor busy, commit results as they come, resubmit on worker death."""
    retriable = _retriable(ray)
    queue = deque(todo)
    attempts: dict[int, int] = {}
    deaths = [0] * len(actors)
    alive = set(range(len(actors)))
    inflight: dict[Any, tuple[int, int]] = {}  # object ref -> (actor, shard)
    load = [0] * len(actors)
    committed: dict[int, ShardResult] = {}

    def fill() -> None:
        for _ in range(opts.inflight_per_worker):
            for a in sorted(alive):
                if queue and load[a] < opts.inflight_per_worker:
                    index = queue.popleft()
                    attempts[index] = attempts.get(index, 0) + 1
                    shard_items = [items[c] for c in shards[index] if c in items]
                    inflight[actors[a].run_shard.remote(index, shard_items)] = (a, index)
                    load[a] += 1

    fill()
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        a, index = inflight.pop(ready[0])
        load[a] -= 1
        try:
            result: ShardResult = ray.get(ready[0])
        except retriable as exc:
            deaths[a] += 1
            reason = f"worker {a} died while running shard {index} (attempt {attempts[index]}): {type(exc).__name__}"
            if attempts[index] > opts.max_retries:
                raise QAError(f"shard {index} ({', '.join(shards[index])}) failed {attempts[index]} times: {reason}",
                              "a case in it may crash the decoder's process (out of memory?); see the Ray logs") from exc
            # one death fails every shard queued on the actor; Ray gives up on it after max_retries restarts
            if deaths[a] > (opts.max_retries + 1) * opts.inflight_per_worker:
                alive.discard(a)
            if not alive:
                raise QAError(f"every Ray worker died (last: {reason})", "see the Ray logs (`ray logs`)") from exc
            if opts.on_retry:
                opts.on_retry(index, reason)
            print(f"qa: {reason}; retrying it", file=sys.stderr)
            queue.appendleft(index)
        else:
            if engine.commit_shard(run.run_id, index, result.output, worker=result.worker):
                committed[index] = result
                store_features(engine.store, result.features)
            if opts.on_shard:
                opts.on_shard(index)
            bar.update(result.output.n_cases)
        fill()
    return committed


def _set_rows(engine: RunEngine, run_id: str, set_metrics: list[SetMetric], results: dict[int, ShardResult],
              todo: list[int], resumed: bool) -> dict[str, SetResult]:
    """``set_results`` rows of set metrics, merged from per-shard states; a metric that cannot merge is missing."""
    rows: dict[str, SetResult] = {}
    if resumed:
        return rows  # RunEngine.finalize stores them as missing, as after a local resume
    for m in set_metrics:
        if m.unavailable_reason():
            continue  # finalize says why
        if not can_merge(m):
            rows[m.name] = SetResult.missing(
                run_id, m.name, "missing", "distributed run: this set metric cannot merge per-shard states (no "
                "export_state/merge_state); run it with --engine local", m.version)
            continue
        missing = [i for i in todo if i not in results]
        if missing:  # committed by someone else meanwhile: their states are not here
            rows[m.name] = SetResult.missing(
                run_id, m.name, "missing",
                f"shards {missing} were committed by another process: their set states are not here", m.version)
            continue
        absent = [i for i in sorted(results) if m.name not in results[i].set_states]
        if absent:  # the worker could not export it (e.g. its weights are absent on that host)
            why = next((results[i].set_errors[m.name] for i in absent if m.name in results[i].set_errors), "no state")
            rows[m.name] = SetResult.missing(run_id, m.name, "error",
                                             f"shards {absent} returned no state for it: {why}", m.version)
            continue
        m.reset()
        try:
            for index in sorted(results):
                err = results[index].set_errors.get(m.name)
                if err:
                    m.record_update_error(err)  # its row is an error naming it (RunEngine.set_metric_result)
                m.merge_state(results[index].set_states[m.name])
        except Exception as exc:  # noqa: BLE001 - a state that cannot merge is an error row, never a crash
            rows[m.name] = SetResult.missing(
                run_id, m.name, "error", f"merging per-shard states failed: {type(exc).__name__}: {exc}", m.version)
            continue
        rows[m.name] = engine.set_metric_result(run_id, m, resumed=False)
    return rows
