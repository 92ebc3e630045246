"""The declared members of set metrics (mergeable state, update errors) and the feature-cache protocols."""

from __future__ import annotations

import numpy as np

from qa.metrics.base import ImageSample, SetMetric, SetValue
from qa.metrics.catalog import METRICS
from qa.metrics.feature_cache import CachedExtractor, FeatureVectors, UsesFeatureCache


class _Plain(SetMetric):
    name = "plain-set"

    def __init__(self) -> None:
        self.n = 0

    def update(self, sample: ImageSample) -> None:
        self.n += 1

    def compute(self) -> SetValue:
        return SetValue(float(self.n), n=self.n)

    def reset(self) -> None:
        self.n = 0


class _Mergeable(_Plain):
    name = "mergeable-set"

    def export_state(self) -> int:
        return self.n

    def merge_state(self, state: int) -> None:
        self.n += state


def test_mergeable_is_declared_by_overriding_export_and_merge() -> None:
    assert not _Plain().mergeable
    a, b = _Mergeable(), _Mergeable()
    assert a.mergeable
    a.update(ImageSample("c", np.zeros((2, 2, 3), np.float32)))
    b.merge_state(a.export_state())
    assert b.compute().value == 1.0
    for name in ("fid", "kid", "cmmd", "clip_score"):  # the built-in set metrics run on the Ray engine
        m = METRICS.create(name)
        assert isinstance(m, SetMetric) and m.mergeable, name
        assert isinstance(m, UsesFeatureCache), name


def test_update_errors_are_recorded_in_order_and_cleared() -> None:
    m = _Plain()
    assert m.update_errors == () and m.update_error == ""
    m.record_update_error("a: first")
    m.record_update_error("b: second")
    assert m.update_errors == ("a: first", "b: second") and m.update_error == "b: second"
    assert _Plain().update_errors == ()  # per instance, never shared through the class
    m.clear_update_errors()
    assert m.update_error == ""


class _Named:
    name, sha256, preprocessing = "net", "abc", "uint8;none"

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack([im.reshape(-1, 3).mean(0) for im in images]).astype(np.float32)


class _Memory:
    def __init__(self) -> None:
        self.key = ("mem", "0", "p")
        self.data: dict[str, np.ndarray] = {}

    def get(self, shas: list[str]) -> dict[str, np.ndarray]:
        return {s: self.data[s] for s in shas if s in self.data}

    def put(self, items: dict[str, np.ndarray]) -> None:
        self.data.update(items)


def test_cached_extractor_key_and_any_feature_vectors_cache() -> None:
    assert CachedExtractor(_Named(), None).key == ("net", "abc", "uint8;none")
    assert CachedExtractor(lambda ims: np.zeros((len(ims), 1)), None).key is None  # nothing names its features
    cache: FeatureVectors = _Memory()
    ext = CachedExtractor(_Named(), cache)
    assert ext.key == ("mem", "0", "p")
    img = np.full((2, 2, 3), 10, np.uint8)
    first = ext(["x"], [img])
    again = ext(["x"], [img])
    assert ext.n_forward == 1 and ext.n_cached == 1 and np.array_equal(first, again)
