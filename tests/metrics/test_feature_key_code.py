"""A cached feature vector is served only to the code and the device that computed it (cache audit F8).

The feature key used to be (extractor, weights sha256, image, a hand-written preprocessing string): an edit to
the resizer, the network or the image loader that did not also edit that string served the old code's
reference vectors beside the new code's output vectors, and CPU vectors beside CUDA ones.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from qa.metrics import feature_cache
from qa.metrics.base import ImageSample
from qa.metrics.feature_cache import computation_tag, pixels_sha256
from qa.metrics.functional import realism as R
from qa.metrics.functional.inception import random_state_dict
from qa.metrics.realism import KID, InceptionExtractor
from qa.store.db import Store
from qa.store.features import put_features


@pytest.fixture
def scratch_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A module ``qa_scratch_extractor`` on sys.path whose source the test can edit."""
    path = tmp_path / "qa_scratch_extractor.py"
    path.write_text("SCALE = 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield path
    sys.modules.pop("qa_scratch_extractor", None)
    computation_tag.cache_clear()


def test_the_tag_changes_with_the_extractors_source(scratch_module: Path) -> None:
    computation_tag.cache_clear()
    before = computation_tag(("qa_scratch_extractor",))
    scratch_module.write_text("SCALE = 2.0\n")
    computation_tag.cache_clear()
    after = computation_tag(("qa_scratch_extractor",))
    assert before != after and before.startswith(";code=") and ";device=cpu" in before


def test_the_tag_changes_with_the_loader_and_a_library(monkeypatch: pytest.MonkeyPatch) -> None:
    computation_tag.cache_clear()
    base = computation_tag(("qa.metrics.realism",))
    real = feature_cache._source_bytes
    monkeypatch.setattr(feature_cache, "_source_bytes",
                        lambda m: real(m) + (b"# edited" if m == "qa.imageio" else b""))
    computation_tag.cache_clear()
    assert computation_tag(("qa.metrics.realism",)) != base  # the image loader is part of every key
    monkeypatch.setattr(feature_cache, "_source_bytes", real)
    monkeypatch.setattr(feature_cache, "_version", lambda p: "9.9" if p == "torch" else "1")
    computation_tag.cache_clear()
    assert computation_tag(("qa.metrics.realism",)) != base
    computation_tag.cache_clear()


def test_the_tag_names_the_device_type_not_its_index() -> None:
    assert computation_tag((), "cuda:0").endswith(";device=cuda")
    assert computation_tag((), "cuda:0") == computation_tag((), "cuda:1") == computation_tag((), "cuda")
    assert computation_tag((), "cuda") != computation_tag((), "cpu")


def test_a_module_without_source_is_an_error_not_a_silent_key() -> None:
    computation_tag.cache_clear()
    with pytest.raises(ValueError, match="no Python source"):
        computation_tag(("qa_no_such_module_here",))


def test_every_cached_extractor_names_its_code_and_device(tmp_path: Path) -> None:
    path = tmp_path / "inc.pth"
    torch.save(random_state_dict(seed=0), path)
    assert ";code=" in InceptionExtractor(path).preprocessing
    assert InceptionExtractor(path).preprocessing.endswith(";device=cpu")
    from qa.metrics.text import readings

    assert ";code=" in readings._Reader.preprocessing


def test_reference_vectors_of_other_code_are_recomputed_not_served(tmp_path: Path) -> None:
    """A store holds reference vectors put under the key without the code tag (what the previous code stored
    under its hand-written string): the new code recomputes them (a forward pass per reference) and its KID is
    the value of a fresh store, not one made from the stale vectors."""
    path = tmp_path / "inc.pth"
    torch.save(random_state_dict(seed=0), path)
    rng = np.random.default_rng(3)
    ref = rng.random((3, 64, 64, 3))
    cand = np.clip(ref * 0.7 + 0.1, 0, 1)
    shas = [pixels_sha256(r) for r in ref]
    net = InceptionExtractor(path)
    untagged = net.preprocessing.split(";code=", 1)[0]
    stale = {sha: np.full(2048, 7.0, np.float32) for sha in shas}

    def kid(store: Store) -> tuple[float, int]:
        m = KID(weights_path=path, store=store, subsets=2, subset_size=2, n_bootstrap=0)
        for i in range(len(ref)):
            m.update(ImageSample(f"c{i}", cand[i], ref[i], reference_sha256=shas[i]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", R.SmallSampleWarning)
            return m.compute().value, m.extractor().n_forward

    stale_store = Store(tmp_path / "stale.duckdb")
    put_features(stale_store, (net.name, net.sha256, untagged), stale)
    value, forwards = kid(stale_store)
    fresh_value, _ = kid(Store(tmp_path / "fresh.duckdb"))
    assert forwards == 6  # 3 references + 3 outputs: nothing served from the stale key
    assert value == pytest.approx(fresh_value, rel=1e-9, abs=1e-12)
