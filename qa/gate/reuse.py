"""Reusing a stored run: a finished run whose identity (decoder weights sha256, reference set, seeds, metrics,
qa version) equals the one a new run would get is reused instead of decoding again.

:func:`planned_identity` hashes the same fields as ``RunEngine.create_run`` (``identity_fields``).
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.engine.provenance import identity_sha256
from qa.engine.run import RunConfig, RunEngine, identity_fields, make_decoder, make_metrics
from qa.engine.shard import effective_seeds
from qa.errors import QAError
from qa.refset.manifest import load_reference_set
from qa.store import Store


def planned_identity(config: RunConfig) -> str:
    """The ``identity_sha256`` that ``RunEngine.start(config)`` would store."""
    decoder = make_decoder(config.decoder, config.device)
    refset = load_reference_set(config.reference_set)
    metrics = make_metrics(config.metrics)
    fields = identity_fields(decoder, refset, metrics, effective_seeds(decoder, config.seeds))
    return identity_sha256(fields)


@dataclass(frozen=True)
class EnsuredRun:
    """A run id and whether it was reused (True) or run now (False)."""

    run_id: str
    reused: bool


def find_reusable(store: Store, identity: str) -> str | None:
    """The latest finished run with this identity, or None."""
    rows = store.query("select run_id from runs where identity_sha256 = ? and status = 'finished' "
                       "order by started_at desc limit 1", [identity])
    return str(rows[0][0]) if rows else None


def ensure_run(store: Store, config: RunConfig) -> EnsuredRun:
    """Reuse a finished run with the same identity, or run ``config`` now. Raises QAError if it cannot run."""
    reason = make_decoder(config.decoder, config.device).unavailable_reason()
    if reason:
        raise QAError(f"decoder {config.decoder!r} cannot run here: {reason}")
    found = find_reusable(store, planned_identity(config))
    if found:
        return EnsuredRun(found, True)
    return EnsuredRun(RunEngine(store).start(config), False)
