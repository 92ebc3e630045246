"""Reusing a stored run: a finished run whose identity (decoder weights sha256, reference set, seeds, metrics,
qa version) equals the one a new run would get is reused instead of decoding again; so is a finished run with
the same identity apart from its metrics when it computed every metric needed (same names and versions), e.g.
the run of ``qa demo`` for a later ``pytest suites/ --decoder=pid``.

:func:`planned_identity` hashes the same fields as ``RunEngine.create_run`` (``identity_fields``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from qa.engine.provenance import identity_sha256
from qa.engine.run import RunConfig, RunEngine, base_identity_sha256, identity_fields, make_decoder, make_metrics
from qa.engine.shard import effective_seeds
from qa.errors import QAError
from qa.refset.manifest import load_reference_set
from qa.store import Store


@dataclass(frozen=True)
class PlannedIdentity:
    """What a new run of a config would store: its identity, the identity without metrics, the metric versions."""

    identity: str
    base: str
    metric_versions: dict[str, str]


def plan(config: RunConfig) -> PlannedIdentity:
    """The identities ``RunEngine.start(config)`` would store (without running anything)."""
    decoder = make_decoder(config.decoder, config.device)
    refset = load_reference_set(config.reference_set)
    metrics = make_metrics(config.metrics)
    fields = identity_fields(decoder, refset, metrics, effective_seeds(decoder, config.seeds))
    return PlannedIdentity(identity_sha256(fields), base_identity_sha256(fields), {m.name: m.version for m in metrics})


def planned_identity(config: RunConfig) -> str:
    """The ``identity_sha256`` that ``RunEngine.start(config)`` would store."""
    return plan(config).identity


@dataclass(frozen=True)
class EnsuredRun:
    """A run id and whether it was reused (True) or run now (False)."""

    run_id: str
    reused: bool


def find_reusable(store: Store, identity: str | PlannedIdentity) -> str | None:
    """The latest finished run with this identity, else (given a :class:`PlannedIdentity`) the latest finished
    run with the same identity apart from its metrics that computed every planned metric at the same version."""
    planned = identity if isinstance(identity, PlannedIdentity) else None
    exact = planned.identity if planned else str(identity)
    rows = store.query("select run_id from runs where identity_sha256 = ? and status = 'finished' "
                       "order by started_at desc limit 1", [exact])
    if rows or planned is None:
        return str(rows[0][0]) if rows else None
    rows = store.query("select run_id, config_json from runs where status = 'finished' "
                       "and json_extract_string(config_json, '$.base_identity_sha256') = ? "
                       "order by started_at desc", [planned.base])
    for run_id, config_json in rows:
        versions = json.loads(str(config_json)).get("metric_versions") or {}
        if all(versions.get(name) == version for name, version in planned.metric_versions.items()):
            return str(run_id)
    return None


def ensure_run(store: Store, config: RunConfig) -> EnsuredRun:
    """Reuse a finished run with the same identity, or run ``config`` now. Raises QAError if it cannot run."""
    reason = make_decoder(config.decoder, config.device).unavailable_reason()
    if reason:
        raise QAError(f"decoder {config.decoder!r} cannot run here: {reason}")
    found = find_reusable(store, plan(config))
    if found:
        return EnsuredRun(found, True)
    return EnsuredRun(RunEngine(store).start(config), False)
