"""Set metrics on small sets: CMMD of one image is missing with the reason (as FID/KID), KID's interval has width
(not the zero-width spread of subsets that all equal the whole set), and the FID/CMMD/KID bootstrap intervals hold
their own value (resampling repeats outputs, which shifts the plain percentile interval off the value)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from qa.engine.run import RunEngine
from qa.metrics.base import ImageSample, MetricInputError, NotApplicable
from qa.metrics.functional import realism as R
from qa.metrics.realism import DIM, FID, KID
from tests.metrics.clip_helpers import random_images, tiny_clip

open_clip = pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_clip(0)



def test_cmmd_of_one_image_is_missing_with_the_reason(model: torch.nn.Module) -> None:
    from qa.metrics.clip import CMMD

    ref, cand = random_images(1, 2), random_images(2, 2)
    m = CMMD(model=model, model_sha256="x", n_bootstrap=20)
    m.update(ImageSample("c0", cand[0], ref[0]))
    with pytest.raises(NotApplicable, match="at least 2 reference images, have 1"):
        m.compute()
    row = RunEngine.set_metric_result("run", m, resumed=False)
    assert row.status == "missing" and row.value is None and "at least 2 reference images" in row.detail
    # two references, one output: an error, as FID/KID
    m = CMMD(model=model, model_sha256="x", n_bootstrap=20)
    unit = np.eye(32)
    m.emb = {"ref": [unit[:2]], "cand": [unit[2:3]]}
    with pytest.raises(MetricInputError, match="at least 2 outputs, have 1"):
        m.compute()


def _inception_metric(cls: type, x: np.ndarray, y: np.ndarray, **kw: object):  # noqa: ANN202
    m = cls(weights_path="unused", **kw)
    m._add("ref", x)
    m._add("cand", y)
    m.n_references, m.n_candidates = len(x), len(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", R.SmallSampleWarning)
        return m.compute()


def test_kid_interval_has_width_when_every_subset_is_the_whole_set() -> None:
    rng = np.random.default_rng(0)
    for n in (3, 4, 10):
        x = rng.normal(size=(n, DIM)) * 0.5 + 1.0
        y = rng.normal(size=(n, DIM)) * 0.6 + 1.1
        v = _inception_metric(KID, x, y, subsets=20, n_bootstrap=100)
        assert v.ci_low < v.value < v.ci_high, (n, v)
        assert v.ci_high - v.ci_low > 0.01 * abs(v.value), (n, v)  # a width, not round-off between subsets
        assert "bootstrap" in v.detail
    # two outputs: no interval (NaN ends) and the reason, never a zero-width one
    x, y = rng.normal(size=(2, DIM)), rng.normal(size=(2, DIM)) + 0.1
    v = _inception_metric(KID, x, y, subsets=20, n_bootstrap=100)
    assert math.isnan(v.ci_low) and math.isnan(v.ci_high) and "no CI" in v.detail


def test_fid_interval_holds_its_value_at_small_n() -> None:
    rng = np.random.default_rng(1)
    for n in (3, 5):
        x = rng.normal(size=(n, DIM)) * 0.5 + 1.0
        y = rng.normal(size=(n, DIM)) * 0.6 + 1.1
        fid = _inception_metric(FID, x, y, n_bootstrap=50)
        assert fid.ci_low < fid.value < fid.ci_high, (n, fid)


def test_cmmd_interval_holds_its_value_at_small_n(model: torch.nn.Module) -> None:
    from qa.metrics.clip import CMMD

    rng = np.random.default_rng(0)
    for n in (3, 6, 10):
        for _ in range(15):
            x = rng.normal(size=(n, 32))
            y = rng.normal(size=(n, 32)) + 0.3
            m = CMMD(model=model, model_sha256="x", n_bootstrap=200)
            m.emb = {"ref": [x / np.linalg.norm(x, axis=1, keepdims=True)],
                     "cand": [y / np.linalg.norm(y, axis=1, keepdims=True)]}
            v = m.compute()
            assert v.ci_low < v.value < v.ci_high, (n, v)
