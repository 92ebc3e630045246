"""Equal seeds are not scored twice: a deterministic decoder's second seed copies the first seed's rows (same
value, status and detail), while a stochastic decoder's seeds are each computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.metrics.fidelity import PSNR
from qa.store import Store
from tests.helpers import make_refset, seeded_noise


class NoisyBicubic(BicubicDecoder):
    """Bicubic plus seeded noise of 2/255: each seed gives other pixels."""

    family = "seed-reuse-noisy"
    stochastic = True

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return (out + seeded_noise(out, batch.case_ids, seed) * (2 / 255)).clamp(0, 1)


def _rows(store: Store, run_id: str, metric: str) -> dict[tuple[str, int], tuple[float, str]]:
    got = store.query("select case_id, seed, value, detail from results where run_id = ? and metric = ?",
                      [run_id, metric])
    return {(c, s): (v, d) for c, s, v, d in got}


@pytest.fixture
def counted_psnr(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = PSNR.compute

    def counting(self: PSNR, sample: object) -> object:
        calls.append(1)
        return original(self, sample)  # type: ignore[arg-type]

    monkeypatch.setattr(PSNR, "compute", counting)
    return calls


def _run(tmp_path: Path, decoder: str, n: int, **config: Any) -> tuple[Store, str]:
    """A ``qa run`` of ``decoder`` on a fresh ``n``-image reference set into a fresh store: (store, run id)."""
    refset = make_refset(tmp_path / "set", n=n)
    store = Store(tmp_path / "qa.duckdb")
    return store, RunEngine(store).start(RunConfig(decoder=decoder, reference_set=str(refset), progress=False,
                                                   **config))


def test_deterministic_second_seed_copies_first(tmp_path: Path, counted_psnr: list[int]) -> None:
    store, run_id = _run(tmp_path, "bicubic", 4, seeds=[0, 1], metrics=["psnr", "invented_detail"])
    for metric in ("psnr", "invented_detail"):
        rows = _rows(store, run_id, metric)
        cases = {c for c, _ in rows}
        assert len(cases) == 4 and len(rows) == 8
        for case in cases:
            v0, d0 = rows[(case, 0)]
            v1, d1 = rows[(case, 1)]
            assert v1 == v0 and v0 is not None and d1 == d0
    assert len(counted_psnr) == 4  # computed once per case, not once per seed


def test_stochastic_seeds_are_each_computed(tmp_path: Path, counted_psnr: list[int]) -> None:
    _register("seed-reuse-noisy", NoisyBicubic)
    store, run_id = _run(tmp_path, "seed-reuse-noisy", 4, seeds=[0, 1], metrics=["psnr"])
    rows = _rows(store, run_id, "psnr")
    assert len(rows) == 8 and len(counted_psnr) == 8
    for case in {c for c, _ in rows}:
        assert rows[(case, 0)][0] != rows[(case, 1)][0]


def test_unavailable_set_metric_is_not_fed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A set metric whose weights are absent is stored as missing with its reason and never fed (feeding it
    would try to load the absent model once per shard)."""
    from qa.metrics import clip

    probe = clip.CLIPScore()
    reason = probe.unavailable_reason()
    if reason is None:
        pytest.skip("CLIP weights are present here: clip_score is available, nothing to check")
    fed: list[int] = []
    monkeypatch.setattr(clip.CLIPScore, "update", lambda self, sample: fed.append(1))
    store, run_id = _run(tmp_path, "bicubic", 4, seeds=[0], metrics=["psnr", "clip_score"], shard_size=2)
    (status, detail), = store.query("select status, detail from set_results where run_id = ? and metric = ?",
                                    [run_id, "clip_score"])
    assert fed == [] and status == "missing" and detail == reason


class CountingBaselineNoisy(NoisyBicubic):
    """:class:`NoisyBicubic` that counts its baseline calls by seed argument."""

    family = "seed-reuse-baseline"
    calls: list[int | None] = []

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        type(self).calls.append(seed)
        return super().baseline(batch, seed)


class SeededBaselineNoisy(NoisyBicubic):
    """A baseline that depends on the seed (like the generate track's source pipeline): None without one."""

    family = "seed-reuse-seeded-baseline"
    calls: list[int | None] = []

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        type(self).calls.append(seed)
        if seed is None:
            return None
        out = super().baseline(batch, seed)
        assert out is not None
        return (out + seed / 255).clamp(0, 1)


def _register(name: str, cls: type) -> None:
    from qa.decoders.catalog import DECODERS

    if name not in DECODERS:
        DECODERS.register(name, cls)


def test_seed_independent_baseline_is_decoded_once_for_all_seeds(tmp_path: Path) -> None:
    _register("seed-reuse-baseline", CountingBaselineNoisy)
    CountingBaselineNoisy.calls.clear()
    store, run_id = _run(tmp_path, "seed-reuse-baseline", 2, seeds=[0, 1, 2], metrics=["agreement_psnr", "psnr"])
    # one shard of two cases: one call without a seed for the baseline; the per-seed calls are the re-decodes
    # D_baseline(E(output)) of the three (different) outputs
    assert CountingBaselineNoisy.calls.count(None) == 1
    assert sorted(s for s in CountingBaselineNoisy.calls if s is not None) == [0, 1, 2]
    rows = _rows(store, run_id, "agreement_psnr")
    assert len(rows) == 6 and all(v is not None for v, _ in rows.values())
    # the noise differs per seed, the baseline does not: so do the agreement values
    case = next(iter({c for c, _ in rows}))
    assert len({rows[(case, s)][0] for s in (0, 1, 2)}) == 3


def test_seed_dependent_baseline_is_asked_per_seed(tmp_path: Path) -> None:
    _register("seed-reuse-seeded-baseline", SeededBaselineNoisy)
    SeededBaselineNoisy.calls.clear()
    store, run_id = _run(tmp_path, "seed-reuse-seeded-baseline", 2, seeds=[0, 1], metrics=["agreement_psnr"])
    assert SeededBaselineNoisy.calls.count(None) == 1
    # per seed: the baseline itself, then the re-decode of that seed's output
    assert sorted(s for s in SeededBaselineNoisy.calls if s is not None) == [0, 0, 1, 1]
    rows = _rows(store, run_id, "agreement_psnr")
    assert len(rows) == 4 and all(v is not None for v, _ in rows.values())
