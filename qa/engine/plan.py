"""Planning a run: the decoder, reference set, metrics and seeds of a :class:`RunConfig`, built once.

A :class:`RunPlan` is everything :meth:`qa.engine.run.RunEngine.create_run` stores and what reuse compares: its
identity (decoder weights sha256, reference set sha256, seeds, metrics and their versions, decoder settings, the
hash of qa's and the decoder's source code) and the identity without metrics. The decoder is built, the reference
set hashed and the effective seeds applied once per plan; :meth:`RunEngine.ensure` reuses a finished run with that
identity (same code included) none of whose cases failed, or runs the plan.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from qa.decoders.base import Decoder
from qa.decoders.factory import make_decoder
from qa.engine.identity import base_identity_sha256, check_seeds, check_unique_ids, identity_fields
from qa.engine.provenance import identity_sha256
from qa.engine.shard import effective_seeds
from qa.errors import QAError
from qa.metrics.base import Metric
from qa.metrics.catalog import METRICS
from qa.refset.manifest import ReferenceSet, load_reference_set
from qa.store import Store
from qa.store import results as store_results
from qa.store import runs as store_runs


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
    #: decoder settings that replace the configured ones for this run (``qa run --set KEY=VALUE``); they are part
    #: of the run's identity and stored with it like qa.toml's (``config_json.decoder_settings``)
    settings: dict[str, Any] = field(default_factory=dict)


def make_metrics(names: list[str] | None, store: Store | None = None, device: str = "cpu") -> list[Metric]:
    """Instantiate metrics by name (all registered ones when ``names`` is None).

    Metrics whose constructor takes ``store`` get it (their features go through the DuckDB feature cache, so
    reference features are computed once); those taking ``device`` run there."""
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


@dataclass(frozen=True)
class PlannedIdentity:
    """What a new run of a config would store: its identity, the identity without metrics, the metric versions."""

    identity: str
    base: str
    metric_versions: dict[str, str]


@dataclass
class RunPlan:
    """A validated config with its decoder, reference set, metrics and effective seeds (each made once)."""

    config: RunConfig
    decoder: Decoder
    refset: ReferenceSet
    metrics: list[Metric]
    seeds: list[int]
    fields: dict[str, object]

    @property
    def identity(self) -> PlannedIdentity:
        """The identities a run of this plan stores."""
        return PlannedIdentity(identity_sha256(self.fields), base_identity_sha256(self.fields),
                               {m.name: m.version for m in self.metrics})


def plan_run(config: RunConfig, store: Store | None = None, decoder: Decoder | None = None) -> RunPlan:
    """Validate ``config`` and build what its run needs: QAError when the decoder cannot run here, the seeds
    are invalid or the reference set has duplicate ids. ``decoder``: an already built instance (else built)."""
    decoder = decoder or make_decoder(config.decoder, config.device, **config.settings)
    reason = decoder.unavailable_reason()
    if reason:
        raise QAError(f"decoder {config.decoder!r} cannot run here: {reason}")
    check_seeds(config.seeds)
    refset = load_reference_set(config.reference_set)
    check_unique_ids(refset)
    metrics = make_metrics(config.metrics, store, config.device)
    seeds = effective_seeds(decoder, config.seeds)
    return RunPlan(config, decoder, refset, metrics, seeds, identity_fields(decoder, refset, metrics, seeds))


def find_reusable(store: Store, identity: str | PlannedIdentity) -> str | None:
    """The latest finished run with this identity, else (given a :class:`PlannedIdentity`) the latest finished
    run with the same identity apart from its metrics that computed every planned metric at the same version.

    A run any of whose cases failed to decode is never reused (the failure may have been transient: an out-of-memory
    error, a flaky mount; reused, it would fail every later session): the latest clean run that fits is, else None
    (run afresh)."""
    planned = identity if isinstance(identity, PlannedIdentity) else None
    found = store_runs.finished_with_identity(store, planned.identity if planned else str(identity))
    if found and not store_results.case_problems(store, found):
        return found
    if planned is None:
        return None
    for run_id, cfg in store_runs.finished_with_base_identity(store, planned.base):
        versions = cfg.get("metric_versions") or {}
        if (all(versions.get(name) == version for name, version in planned.metric_versions.items())
                and not store_results.case_problems(store, run_id)):
            return run_id
    return None


@dataclass(frozen=True)
class EnsuredRun:
    """A run id and whether it was reused (True) or run now (False)."""

    run_id: str
    reused: bool
