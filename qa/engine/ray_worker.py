"""The worker side of the Ray engine: one actor's body (:class:`ShardWorker`), what it is given and returns.

An actor builds the decoder and the metrics once (from a :class:`WorkerSpec`), then runs many shards with the
same :class:`~qa.engine.shard.ShardRunner` the local engine uses, and returns each shard's output, the states
of its mergeable set metrics and the feature vectors it computed (:class:`ShardResult`). It never opens the
store: the feature vectors it needs arrive from the driver (:class:`ShippedFeatureCache`). The driver is
:mod:`qa.engine.ray_engine`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qa.decoders.factory import make_decoder
from qa.engine.cases import Case, load_case
from qa.engine.plan import make_metrics
from qa.engine.shard import ShardOutput, ShardRunner
from qa.engine.shard_features import ShippedFeatureCache
from qa.errors import QAError
from qa.metrics.base import Metric, SetMetric
from qa.metrics.feature_cache import FeatureKey, UsesFeatureCache, pixels_sha256
from qa.refset.manifest import ReferenceItem


@dataclass
class WorkerSpec:
    """What an actor needs to build its decoder and metrics (shipped once per actor)."""

    decoder: str
    device: str
    metrics: list[str]
    seeds: list[int]
    batch_size: int | None
    thumbnails: bool
    setup: Callable[[], None] | None = None


@dataclass
class ShardResult:
    """What an actor returns for one shard: its output, its set-metric states, who ran it and how long it took."""

    index: int
    output: ShardOutput
    set_states: dict[str, Any] = field(default_factory=dict)  # metric name -> exported state
    set_errors: dict[str, str] = field(default_factory=dict)  # metric name -> update error in this shard
    worker: str = ""
    seconds: float = 0.0
    #: feature vectors computed in this shard, for the driver to store: ((extractor, sha256, preprocessing), {image sha: vector})
    features: list[tuple[FeatureKey, dict[str, np.ndarray]]] = field(default_factory=list)


def can_merge(metric: Metric) -> bool:
    """Whether a set metric can be computed from per-shard states (it implements ``export_state``/``merge_state``)."""
    return isinstance(metric, SetMetric) and metric.mergeable


class ShardWorker:
    """The body of one Ray actor: builds the decoder and metrics once, then runs shards. Never opens the store."""

    def __init__(self, spec: WorkerSpec, features: dict[FeatureKey, dict[str, np.ndarray]] | None = None) -> None:
        self.shipped = features or {}
        self._caches: list[ShippedFeatureCache] | None = None
        if spec.setup is not None:
            spec.setup()
        decoder = make_decoder(spec.decoder, spec.device)
        reason = decoder.unavailable_reason()
        if reason:
            raise QAError(f"decoder {spec.decoder!r} cannot run on Ray worker {socket.gethostname()}: {reason}")
        metrics = make_metrics(spec.metrics)
        for m in metrics:
            if isinstance(m, UsesFeatureCache) and m.store is not None:
                m.store = None  # workers never open the DB (see docs/scaling.md)
        self.runner = ShardRunner(decoder, metrics, spec.seeds, spec.batch_size, spec.thumbnails)
        encoder = decoder.encoder
        self.multiple = encoder.factor if encoder is not None else 1
        self.worker = f"ray:{socket.gethostname()}:{os.getpid()}"

    def ping(self) -> str:
        """This worker's name (host:pid); used to wait until the actor is built."""
        return self.worker

    def run_shard(self, index: int, items: list[ReferenceItem]) -> ShardResult:
        """Run one shard: ``items`` are the reference items the driver validated (path and sha256)."""
        t0 = time.perf_counter()
        for m in self.runner.set_metrics:
            m.reset()
            m.clear_update_errors()
        cases = [self._load(item) for item in items]
        caches = self._feature_caches()
        if caches:
            aliases = _reference_aliases(cases)
            for c in caches:
                c.alias = aliases
        output = self.runner.run(cases)
        states, errors = export_states(self.runner.set_metrics)
        new = [(c.key, c.drain()) for c in caches]
        return ShardResult(index, output, states, errors, self.worker, time.perf_counter() - t0,
                           [(k, v) for k, v in new if v])

    def _feature_caches(self) -> list[ShippedFeatureCache]:
        """Give every metric's cached feature extractor an in-memory cache fed by the driver (once per actor)."""
        if self._caches is None:
            self._caches = []
            for m in [*self.runner.image_metrics, *self.runner.set_metrics]:
                if not isinstance(m, UsesFeatureCache) or m.unavailable_reason():
                    continue
                ext = m.extractor()  # loads the extractor's weights once per actor
                key = ext.key
                if key is None:
                    continue  # features nothing names: computed every time, never shipped
                cache = ShippedFeatureCache(key, self.shipped.get(key, {}))
                ext.cache = cache
                self._caches.append(cache)
        return self._caches

    def _load(self, item: ReferenceItem) -> Case:
        """The case as this host reads it: ``load_case`` checks the bytes it decodes against the run's sha256."""
        return load_case(item, self.multiple, where=f"worker host {socket.gethostname()}")


def export_states(set_metrics: list[SetMetric]) -> tuple[dict[str, Any], dict[str, str]]:
    """(states, errors) of a shard's set metrics. A metric that cannot run here (weights absent: the driver
    stores it as missing with the reason, as the local engine does) exports nothing; one whose export raises
    gets an error instead of killing the shard."""
    states: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for m in set_metrics:
        err = m.update_error
        if err:
            errors[m.name] = err
        if not can_merge(m) or m.unavailable_reason():
            continue
        try:
            states[m.name] = m.export_state()
        except Exception as exc:  # noqa: BLE001 - recorded as this metric's error row
            errors[m.name] = f"exporting its per-shard state on {socket.gethostname()} failed: {type(exc).__name__}: {exc}"
    return states, errors


def _reference_aliases(cases: list[Case]) -> dict[str, str]:
    """pixel sha256 -> file sha256 of the loaded, unaltered references (no crop, no conversion note)."""
    return {pixels_sha256(c.pixels): c.image_sha256 for c in cases
            if c.pixels is not None and not c.error and not c.notes}
