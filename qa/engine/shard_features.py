"""The feature vectors of one shard, held in memory while it runs: what its metrics' cached extractors read (the
references' vectors, fetched from the store before the shard) and what they compute (stored after it).

Both engines work this way. A Ray worker never opens the store (the driver ships the vectors and stores what
comes back); the local engine does not open it while a shard is scored either (:class:`ShardFeatures`): a
DuckDB session, however small, ends with DuckDB handing the C library's free memory back to the kernel
(``malloc_trim``), so a store lookup between two cases made the next case page-fault its whole working memory
in again (at 2048 px about 0.8 CPU s per case, a sixth of the metrics; docs/benchmarks.md, issue 29).

What a shard feeds the set metrics (whose features these are): :func:`set_metric_samples`.
"""

from __future__ import annotations

import numpy as np

from qa.engine.cases import Case, CaseSamples
from qa.metrics.base import ImageSample, Metric, SetMetric, same_pixels
from qa.metrics.feature_cache import FeatureKey, QueuesFeatures, UsesFeatureCache, pixels_sha256
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
    stored after it (:meth:`store_new`). Metrics without a store, without a key or unavailable are left alone.

    A metric that queues images (:class:`QueuesFeatures`: FID, KID, CMMD, CLIP score batch 32 at a time) has its
    queue computed in :meth:`store_new`, so every vector of a shard is stored with that shard: none is left to a
    later shard (whose fetch does not hold this shard's references) or to the end of the run (never stored)."""

    def __init__(self, store: Store, metrics: list[Metric]) -> None:
        self.store = store
        self.caches: list[ShippedFeatureCache] = []
        self.queued: list[QueuesFeatures] = []
        for m in metrics:
            if not isinstance(m, UsesFeatureCache) or m.store is None or m.unavailable_reason():
                continue
            ext = m.extractor()
            if ext.key is None:
                continue
            cache = next((c for c in self.caches if c.key == ext.key), None)
            if cache is None:  # one cache per key: FID and KID share their Inception vectors
                cache = ShippedFeatureCache(ext.key, {})
                self.caches.append(cache)
            ext.cache = cache
            if isinstance(m, QueuesFeatures):
                self.queued.append(m)

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
        """Compute the queued images' vectors, store the vectors the shard computed (one transaction), and
        forget them here. A metric whose queue fails records it as its update error (its set value is then an
        error, as for a failure inside the shard)."""
        for m in self.queued:
            try:
                m.flush_features()
            except Exception as exc:  # noqa: BLE001 - recorded as the metric's error, as in the shard
                if not isinstance(m, SetMetric):
                    raise
                m.record_update_error(f"computing the features queued in a shard: {type(exc).__name__}: {exc}")
        new: list[tuple[FeatureKey, dict[str, np.ndarray]]] = [(c.key, v) for c in self.caches if (v := c.drain())]
        if new:
            put_feature_groups(self.store, new)


def set_metric_samples(cs: CaseSamples) -> list[ImageSample]:
    """The samples of a case that the set metrics (FID, KID, CMMD, CLIP score) are fed: each distinct output once.

    So a set metric's ``n`` is the number of distinct outputs: one per case for a deterministic decoder (its
    seeds must agree, and repeating them would count each output as several samples: FID of the identity
    decoder went from ~0 with one seed to thousands with two), and one per case and seed for a stochastic one
    (the samples over seeds; two seeds that decoded to bit-identical pixels count once). The local engine and the
    Ray workers both feed the set metrics here (both run :class:`qa.engine.shard.ShardRunner`), so their ``n`` agree.
    """
    kept: list[ImageSample] = []
    for seed, sample in cs.samples.items():
        if seed in cs.same or any(same_pixels(sample.output, k.output) for k in kept):
            continue
        kept.append(sample)
    return kept
