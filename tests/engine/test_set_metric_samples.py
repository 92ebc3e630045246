"""What a shard feeds the set metrics (qa.engine.shard_features.set_metric_samples) and what their feature cache
keeps across runs: a deterministic decoder's repeated seeds are one sample each, a stochastic decoder's seeds are
each a sample unless they decoded to the same pixels, and a second run over the same references runs none of
them through Inception (the vectors a shard queued are stored with it, also for sets under one batch)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import qa.metrics.realism as realism
from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder, IdentityDecoder
from qa.engine.cases import Case, load_case
from qa.engine.run import RunConfig, RunEngine
from qa.engine.shard import ShardRunner
from qa.imageio import load_image
from qa.metrics.base import SetMetric, SetValue
from qa.metrics.feature_cache import to_uint8
from qa.metrics.functional import realism as R
from qa.metrics.functional.inception import random_state_dict
from qa.metrics.realism import FID, KID
from qa.refset.manifest import load_reference_set
from qa.store import Store
from qa.weights import store as wstore
from tests.helpers import make_refset, seeded_noise
from tests.metrics.clip_helpers import tiny_clip

open_clip = pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inc") / "random_inception.pth"
    torch.save(random_state_dict(seed=0), path)  # seeded random backbone: the plumbing, not the values
    return path


@pytest.fixture(scope="module")
def clip_model() -> torch.nn.Module:
    return tiny_clip(0)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    refset = load_reference_set(make_refset(tmp_path_factory.mktemp("set") / "refs", n=3, side=32))
    return [load_case(item, 1) for item in refset.items]


class SeedBlindNoisy(BicubicDecoder):
    """Declared stochastic, but every seed gives the same pixels (bicubic plus noise of a fixed seed)."""

    family = "set-samples-seed-blind"
    stochastic = True

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return (out + seeded_noise(out, batch.case_ids, 7) * (2 / 255)).clamp(0, 1)


class Noisy(BicubicDecoder):
    """Stochastic: each seed gives other pixels."""

    family = "set-samples-noisy"
    stochastic = True

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return (out + seeded_noise(out, batch.case_ids, seed) * (2 / 255)).clamp(0, 1)


def _set_values(decoder: object, metrics: list[SetMetric], seeds: list[int], cases: list[Case]) -> dict[str, SetValue]:
    ShardRunner(decoder, metrics, seeds, thumbnails=False).run(cases)  # type: ignore[arg-type]
    assert all(not m.update_error for m in metrics), [m.update_error for m in metrics]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", R.SmallSampleWarning)
        return {m.name: m.compute() for m in metrics}


def _metrics(weights: Path, clip_model: torch.nn.Module) -> list[SetMetric]:
    from qa.metrics.clip import CMMD

    return [FID(weights_path=weights, n_bootstrap=20), KID(weights_path=weights, subsets=10, n_bootstrap=20),
            CMMD(model=clip_model, model_sha256="tiny-test-clip", n_bootstrap=20)]


def test_deterministic_decoder_set_metrics_do_not_depend_on_repeated_seeds(
        weights: Path, clip_model: torch.nn.Module, cases: list[Case]) -> None:
    one = _set_values(IdentityDecoder(), _metrics(weights, clip_model), [0], cases)
    two = _set_values(IdentityDecoder(), _metrics(weights, clip_model), [0, 1], cases)
    for name in ("fid", "kid", "cmmd"):
        assert two[name].n == one[name].n == len(cases), name
        assert two[name].value == one[name].value, name
        assert (two[name].ci_low, two[name].ci_high) == (one[name].ci_low, one[name].ci_high), name


def test_stochastic_decoder_counts_each_distinct_output(weights: Path, cases: list[Case]) -> None:
    """n is the samples over seeds (one per case and seed), where the seeds' pixels differ; equal pixels once."""
    noisy = _set_values(Noisy(), [FID(weights_path=weights, n_bootstrap=0)], [0, 1, 2], cases)
    assert noisy["fid"].n == 3 * len(cases)
    blind = _set_values(SeedBlindNoisy(), [FID(weights_path=weights, n_bootstrap=0)], [0, 1, 2], cases)
    alone = _set_values(SeedBlindNoisy(), [FID(weights_path=weights, n_bootstrap=0)], [0], cases)
    assert blind["fid"].n == len(cases)
    assert blind["fid"].value == alone["fid"].value


def test_second_run_over_the_same_references_runs_none_through_inception(
        tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """5 references in shards of 2 (every set metric queue under one batch of 32): all 5 vectors are stored by
    the first run (FID and KID share them: each image runs once), and the second run (other seeds) computes
    only its outputs' features."""
    refset = make_refset(tmp_path / "refs", n=5, side=32)
    require, unavailable = wstore.require, wstore.unavailable_reason
    monkeypatch.setattr(wstore, "require", lambda name: weights if name == "inception-fid" else require(name))
    monkeypatch.setattr(wstore, "unavailable_reason",
                        lambda names: None if tuple(names) == ("inception-fid",) else unavailable(names))
    ref_hashes = {hashlib.sha256(to_uint8(load_image(p).pixels).tobytes()).hexdigest()
                  for p in sorted(refset.glob("*.png"))}
    seen = {"ref": 0, "out": 0}
    call = realism.InceptionExtractor.__call__

    def counting(self: realism.InceptionExtractor, images: list[np.ndarray]) -> np.ndarray:
        for im in images:
            seen["ref" if hashlib.sha256(im.tobytes()).hexdigest() in ref_hashes else "out"] += 1
        return call(self, images)

    monkeypatch.setattr(realism.InceptionExtractor, "__call__", counting)
    store = Store(tmp_path / "qa.duckdb")
    counts = []
    for seeds in ([0], [1]):
        seen.update(ref=0, out=0)
        run_id = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(refset), seeds=seeds,
                                                  shard_size=2, metrics=["fid", "kid"], progress=False, thumbnails=False))
        status = store.query("select metric, status from set_results where run_id = ? and metric in ('fid', 'kid') "
                             "order by metric", [run_id])
        assert status == [("fid", "ok"), ("kid", "ok")]
        counts.append(dict(seen))
    assert counts[0] == {"ref": 5, "out": 5}
    stored = store.query("select count(*) from features f join cases c on f.image_sha256 = c.image_sha256")[0][0]
    assert stored == 5
    assert counts[1]["ref"] == 0
