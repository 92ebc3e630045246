"""Reusing a stored run: a finished run whose identity (decoder weights sha256, reference set, seeds, metrics,
qa version) equals the one a new run would get is reused instead of decoding again; so is a finished run with
the same identity apart from its metrics when it computed every metric needed (same names and versions), e.g.
the run of ``qa demo`` for a later ``pytest suites/ --decoder=pid``.

:meth:`qa.engine.run.RunEngine.ensure` is the one place that decides; these functions are its parts for callers
that only want to know (:func:`plan`, :func:`planned_identity`, :func:`find_reusable`).
"""

from __future__ import annotations

from qa.engine.plan import EnsuredRun, PlannedIdentity, RunConfig, find_reusable, plan_run
from qa.engine.run import RunEngine
from qa.store import Store

__all__ = ["EnsuredRun", "PlannedIdentity", "ensure_run", "find_reusable", "plan", "planned_identity"]


def plan(config: RunConfig) -> PlannedIdentity:
    """The identities ``RunEngine.start(config)`` would store (without running anything)."""
    return plan_run(config).identity


def planned_identity(config: RunConfig) -> str:
    """The ``identity_sha256`` that ``RunEngine.start(config)`` would store."""
    return plan(config).identity


def ensure_run(store: Store, config: RunConfig) -> EnsuredRun:
    """Reuse a finished run with the same identity, or run ``config`` now (:meth:`RunEngine.ensure`)."""
    return RunEngine(store).ensure(config)
