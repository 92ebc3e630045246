"""The feature vectors of one shard, held in memory while it runs: what its metrics' cached extractors read (the
references' vectors, fetched from the store before the shard) and what they compute (stored after it).

Both engines work this way. A Ray worker never opens the store (the driver ships the vectors and stores what
comes back); the local engine does not open it while a shard is scored either (:class:`ShardFeatures`): a
DuckDB session, however small, ends with DuckDB handing the C library's free memory back to the kernel
(``malloc_trim``), so a store lookup between two cases made the next case page-fault its whole working memory
in again (at 2048 px about 0.8 CPU s per case, a sixth of the metrics; docs/benchmarks.md, issue 29).
"""

from __future__ import annotations

import numpy as np

from qa.engine.cases import Case
from qa.metrics.base import Metric
from qa.metrics.feature_cache import FeatureKey, UsesFeatureCache, pixels_sha256
from qa.store.db import Store
from qa.store.features import features_of_images, put_feature_groups


class ShippedFeatureCache:
    """Stands in for ``qa.metrics.feature_cache.FeatureCache`` while a shard runs (in a Ray worker, or in the
    local engine): serves the vectors fetched before the shard (references, keyed by file sha256) and keeps the
    ones computed in it to be stored after it.

    ``alias`` maps the pixel sha256 of this shard's uncropped references to their file sha256, so a metric that
    keys a reference by its pixels still finds (and stores) it under the file's key.
    """

    def __init__(self, key: FeatureKey, shipped: dict[str, np.ndarray]) -> None:
        self.key = key
        self.shipped = shipped
        self.alias: dict[str, str] = {}
        self.new: dict[str, np.ndarray] = {}

    def get(self, shas: list[str]) -> dict[str, np.ndarray]:
        """Vectors known for those of ``shas`` that are present (computed here or shipped)."""
        found = {}
        for s in shas:
            k = self.alias.get(s, s)
            v = self.new.get(k)
            if v is None:
                v = self.shipped.get(k)
            if v is not None:
                found[s] = v
        return found

    def put(self, items: dict[str, np.ndarray]) -> None:
        """Keep computed vectors (references under their file sha256) until :meth:`drain`."""
        for s, v in items.items():
            self.new[self.alias.get(s, s)] = np.asarray(v, np.float32)

    def drain(self) -> dict[str, np.ndarray]:
        """The vectors computed since the last drain (forgotten here)."""
        new, self.new = self.new, {}
        return new


class ShardFeatures:
    """The local engine's feature caches for one run: each metric's cached extractor reads and fills an
    in-memory :class:`ShippedFeatureCache` instead of the store, filled before each shard (:meth:`fetch`) and
    stored after it (:meth:`store_new`). Metrics without a store, without a key or unavailable are left alone."""

    def __init__(self, store: Store, metrics: list[Metric]) -> None:
        self.store = store
        self.caches: list[ShippedFeatureCache] = []
        for m in metrics:
            if not isinstance(m, UsesFeatureCache) or m.store is None or m.unavailable_reason():
                continue
            ext = m.extractor()
            if ext.key is None:
                continue
            cache = ShippedFeatureCache(ext.key, {})
            ext.cache = cache
            self.caches.append(cache)

    def fetch(self, cases: list[Case]) -> None:
        """Every stored vector of the references of ``cases``, under the key the samples name them by: the
        file's sha256, or the pixels' for a cropped reference (as the shard runner names them)."""
        if not self.caches:
            return
        shas = {c.image_sha256 for c in cases if c.image_sha256}
        shas |= {pixels_sha256(c.pixels) for c in cases
                 if c.pixels is not None and any("cropped" in n for n in c.notes)}
        found = features_of_images(self.store, sorted(shas))
        for cache in self.caches:
            cache.shipped = found.get(cache.key, {})

    def store_new(self) -> None:
        """Store the vectors the shard computed (one transaction), and forget them here."""
        new: list[tuple[FeatureKey, dict[str, np.ndarray]]] = [(c.key, v) for c in self.caches if (v := c.drain())]
        if new:
            put_feature_groups(self.store, new)
