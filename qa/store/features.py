"""The ``features`` table: cached feature vectors, keyed by every choice that changes one.

Key: (extractor name, extractor weights sha256, image sha256, preprocessing). Vectors are float32. This is the
only place that reads or writes the table (the metrics' feature cache and the Ray engine both come here).

A vector that is not finite is never stored (ValueError). Each vector is read back with its own length (rows of
one key are not assumed to share one); whether a stored vector may be used (finite, the extractor's length) is
checked by the reader (``qa.metrics.feature_cache.CachedExtractor``), which replaces a bad one.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pyarrow as pa

from qa.store.db import Store

#: (extractor, extractor_sha256, preprocessing): the part of a feature's key shared by one extractor's vectors
FeatureKey = tuple[str, str, str]


def get_features(store: Store, key: FeatureKey, shas: list[str]) -> dict[str, np.ndarray]:
    """Cached vectors (float32) of ``key`` for those of the image sha256s ``shas`` that are present."""
    if not shas:
        return {}
    with store.connect() as con:
        # execute(), not sql(): the connection may still hold the migration check's result
        res = con.execute(
            "select image_sha256, vector from features where extractor = ? and extractor_sha256 = ? "
            "and preprocessing = ? and image_sha256 in (select unnest(?))",
            [key[0], key[1], key[2], list(set(shas))],
        )
        with warnings.catch_warnings():  # duckdb notes the (small) extra copy of a DB-API arrow fetch
            warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
            tbl: Any = res.to_arrow_table() if hasattr(res, "to_arrow_table") else res.fetch_arrow_table()  # type: ignore[attr-defined]
    if tbl.num_rows == 0:
        return {}
    names = tbl.column("image_sha256").to_pylist()
    vec = tbl.column("vector").combine_chunks()
    valid = vec.is_valid().to_numpy(zero_copy_only=False)
    offsets = vec.offsets.to_numpy()
    values = vec.values.to_numpy(zero_copy_only=False).astype(np.float32)
    return {name: values[offsets[i]:offsets[i + 1]] for i, name in enumerate(names) if valid[i]}


def _checked_finite(key: FeatureKey, items: dict[str, np.ndarray]) -> None:
    """ValueError naming the first image whose vector holds NaN or Inf (such a vector is never stored)."""
    for sha, v in items.items():
        if not np.isfinite(np.asarray(v, np.float32)).all():
            raise ValueError(f"refusing to store a feature vector with NaN or Inf values ({key[0]}, image "
                             f"{sha[:12]})")


def put_features(store: Store, key: FeatureKey, items: dict[str, np.ndarray]) -> None:
    """Store vectors of ``key`` by image sha256 (replacing any with the same key), in one transaction."""
    if not items:
        return
    _checked_finite(key, items)
    shas = list(items)
    vecs = np.stack([np.asarray(items[s], np.float32) for s in shas])
    n, d = vecs.shape
    table = pa.table({
        "extractor": [key[0]] * n,
        "extractor_sha256": [key[1]] * n,
        "image_sha256": shas,
        "preprocessing": [key[2]] * n,
        "vector": pa.ListArray.from_arrays(pa.array(np.arange(0, n * d + 1, d, dtype=np.int32)),
                                           pa.array(vecs.reshape(-1))),
    })
    with store.transaction() as con:
        con.register("qa_new_features", table)
        con.execute("insert or replace into features select * from qa_new_features")
        con.unregister("qa_new_features")


def features_of_images(store: Store, image_shas: list[str]) -> dict[FeatureKey, dict[str, np.ndarray]]:
    """Every cached vector of these images (any extractor), grouped by extractor key."""
    if not image_shas:
        return {}
    with store.connect() as con:
        rows = con.execute(
            "select extractor, extractor_sha256, preprocessing, image_sha256, vector from features "
            "where image_sha256 in (select unnest(?))", [sorted(set(image_shas))]).fetchall()
    out: dict[FeatureKey, dict[str, np.ndarray]] = {}
    for ex, ex_sha, prep, sha, vec in rows:
        if vec is None:
            continue
        out.setdefault((str(ex), str(ex_sha), str(prep)), {})[str(sha)] = np.asarray(vec, np.float32)
    return out


def put_feature_groups(store: Store, features: list[tuple[FeatureKey, dict[str, np.ndarray]]]) -> None:
    """Insert (or replace) several extractors' vectors (e.g. computed by a worker) in one transaction."""
    for key, vecs in features:
        _checked_finite(key, vecs)
    rows = [[k[0], k[1], sha, k[2], np.asarray(v, np.float32).tolist()] for k, vecs in features
            for sha, v in vecs.items()]
    if rows:
        with store.transaction() as con:
            con.executemany("insert or replace into features values (?, ?, ?, ?, ?)", rows)
