"""The DuckDB store: every number qa computes, traceable to its inputs."""

from qa.store.db import DEFAULT_DB, Store

__all__ = ["DEFAULT_DB", "Store"]
