"""The set metrics' feature cache serves only vectors it can vouch for: a CLIP model without a weights sha256 is
never cached (two such models would share one key), non-finite vectors are never stored, and a stored vector that
is not finite or has the wrong length is treated as absent: computed again and replaced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from qa.metrics.base import ImageSample
from qa.metrics.feature_cache import CachedExtractor, FeatureCache
from qa.store.db import Store
from qa.store.features import get_features, put_feature_groups, put_features
from tests.metrics.clip_helpers import random_images, tiny_clip

open_clip = pytest.importorskip("open_clip")

KEY = ("test-net", "f" * 64, "uint8;none")
DIM = 4



def _cmmd(model: torch.nn.Module, store: Store | None, sha: str = "") -> tuple[float, int]:
    from qa.metrics.clip import CMMD

    ref, cand = random_images(1, 4), random_images(2, 4)
    m = CMMD(model=model, model_sha256=sha, store=store, n_bootstrap=0)
    for i in range(4):
        m.update(ImageSample(f"c{i}", cand[i], ref[i], reference_sha256=f"refsha{i}"))
    return m.compute().value, m.extractor().n_forward


def test_clip_models_without_sha256_get_their_own_values(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    a, b = tiny_clip(0), tiny_clip(1)
    value_a, _ = _cmmd(a, store)
    value_b, forward_b = _cmmd(b, store)
    assert value_b == _cmmd(b, None)[0] != value_a
    assert forward_b == 8  # nothing served from A's vectors
    assert store.query("select count(*) from features")[0][0] == 0  # nothing names these features: not cached
    # a model named by its weights' sha256 is cached: the same model again runs no forward pass
    named, _ = _cmmd(a, store, sha="a" * 64)
    again, forward = _cmmd(a, store, sha="a" * 64)
    assert again == named == value_a and forward == 0


def _fake(images: list[np.ndarray]) -> np.ndarray:
    return np.stack([np.full(DIM, float(im.mean()), np.float32) + np.arange(DIM, dtype=np.float32)
                     for im in images])


def test_non_finite_vectors_are_never_stored(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    with pytest.raises(ValueError, match="NaN or Inf"):
        put_features(store, KEY, {"a": np.array([0.0, np.nan, 1.0, 2.0], np.float32)})
    with pytest.raises(ValueError, match="NaN or Inf"):
        put_feature_groups(store, [(KEY, {"b": np.array([0.0, np.inf, 1.0, 2.0], np.float32)})])
    assert store.query("select count(*) from features")[0][0] == 0

    def half_broken(images: list[np.ndarray]) -> np.ndarray:
        out = _fake(images)
        out[0, 0] = np.nan  # e.g. a half-precision overflow
        return out

    images = [np.full((2, 2, 3), v, np.uint8) for v in (10, 20)]
    ext = CachedExtractor(half_broken, FeatureCache(store, *KEY), dim=DIM)
    got = ext(["x", "y"], images)
    assert np.isnan(got[0, 0]) and np.isfinite(got[1]).all()  # returned as computed (the metric reports it)
    assert set(get_features(store, KEY, ["x", "y"])) == {"y"}  # but only the finite one is cached


def test_bad_stored_vectors_are_recomputed_and_replaced(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    bad = {"nan": [float("nan")] * DIM, "short": [1.0] * (DIM - 1), "long": [2.0] * (DIM + 1)}
    with store.transaction() as con:  # damaged rows, as an older qa or a broken disk could leave them
        for sha, vec in bad.items():
            con.execute("insert into features values (?, ?, ?, ?, ?)", [KEY[0], KEY[1], sha, KEY[2], vec])
    put_features(store, KEY, {"good": np.arange(DIM, dtype=np.float32)})
    # each vector comes back with its own length (not re-sliced across rows)
    lengths = {s: len(v) for s, v in get_features(store, KEY, [*bad, "good"]).items()}
    assert lengths == {"nan": DIM, "short": DIM - 1, "long": DIM + 1, "good": DIM}

    shas = ["nan", "short", "long", "good"]
    images = [np.full((2, 2, 3), v, np.uint8) for v in (10, 20, 30, 40)]
    ext = CachedExtractor(_fake, FeatureCache(store, *KEY), dim=DIM)
    got = ext(shas, images)
    assert ext.n_forward == 3 and ext.n_rejected == 3 and ext.n_cached == 1
    expected = _fake(images)
    np.testing.assert_array_equal(got[:3], expected[:3])
    np.testing.assert_array_equal(got[3], np.arange(DIM, dtype=np.float32))  # the good one is served
    stored = get_features(store, KEY, shas)
    for i, sha in enumerate(shas[:3]):  # replaced in the store
        np.testing.assert_array_equal(stored[sha], expected[i])
    again = CachedExtractor(_fake, FeatureCache(store, *KEY), dim=DIM)
    again(shas, images)
    assert again.n_forward == 0 and again.n_rejected == 0
