"""The DuckDB store: every number qa computes, traceable to its inputs."""

from qa.settings import DEFAULT_DB
from qa.store.db import Store

__all__ = ["DEFAULT_DB", "Store"]
