"""Scoring groups (qa.engine.groups): on a CPU each case is prepared alone; on a GPU consecutive cases of one
size are prepared together, so the metrics batch over the shard's images. Both give the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qa.engine import shard
from qa.engine.groups import DEVICE_GROUP_PIXELS, Group, group_pixels, scoring_device
from qa.engine.run import RunConfig, RunEngine
from qa.metrics import fidelity, perceptual
from qa.metrics.fidelity import PSNR
from qa.metrics.invented.metrics import InventedDetail
from qa.store import Store
from tests.helpers import make_refset

METRICS = ["psnr", "ssim", "ssim_skimage", "ms_ssim", "baseline_psnr", "baseline_ssim", "invented_detail",
           "invented_peak", "lost_detail", "invented_consistent", "invented_contradicting", "distortion",
           "hf_energy_ratio", "seed_variance"]


def test_a_cpu_scores_each_case_alone_and_a_gpu_groups_them() -> None:
    assert scoring_device([PSNR(), InventedDetail()]).type == "cpu"
    assert scoring_device([PSNR(), InventedDetail(device="cuda:1"), object()]) == torch.device("cuda:1")
    assert group_pixels(torch.device("cpu")) == 0 and group_pixels(torch.device("cuda")) == DEVICE_GROUP_PIXELS
    alone: Group[str] = Group(0)
    assert alone.takes((64, 64), 4096)  # an empty group takes any case
    alone.add("a", (64, 64), 4096)
    assert not alone.takes((64, 64), 4096)
    group: Group[str] = Group(3 * 4096)
    for case in "abc":
        assert group.takes((64, 64), 4096)
        group.add(case, (64, 64), 4096)
    assert not group.takes((64, 64), 4096)  # over the budget
    assert not Group(10**9, ["a"], (64, 64), 4096).takes((64, 80), 5120)  # another size


def _rows(tmp_path: Path, name: str, device: str = "cpu") -> dict[tuple[str, int, str], tuple[float | None, str, str]]:
    store = Store(tmp_path / f"{name}.duckdb")
    run_id = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(tmp_path / "set"), seeds=[0, 1],
                                              metrics=METRICS, progress=False, device=device))
    got = store.query("select case_id, seed, metric, value, status, detail from results where run_id = ?", [run_id])
    return {(c, s, m): (v, st, d) for c, s, m, v, st, d in got}


def test_a_group_scores_what_one_case_at_a_time_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_refset(tmp_path / "set", n=4, side=192)
    prepared: list[int] = []
    real = shard.ShardRunner._prepare
    monkeypatch.setattr(shard.ShardRunner, "_prepare",
                        lambda self, samples: (prepared.append(len(samples)), real(self, samples))[1])
    alone = _rows(tmp_path, "alone")
    assert prepared == [1, 1, 1, 1]  # a case a group (bicubic's second seed copies the first's rows)
    prepared.clear()
    # what a GPU run does, here on the CPU: one group for the shard, every batching metric batches
    monkeypatch.setattr(shard, "group_pixels", lambda device: DEVICE_GROUP_PIXELS)
    for module in (fidelity, perceptual):
        monkeypatch.setattr(module, "batches_on", lambda device: True)
    together = _rows(tmp_path, "together")
    assert prepared == [4]
    assert together.keys() == alone.keys() and len(alone) == 4 * (1 + 2 * (len(METRICS) - 1) + 1)
    for key, (value, status, detail) in alone.items():
        v, st, d = together[key]
        assert (st, d) == (status, detail), key
        assert (v is None) == (value is None), key
        if value is not None:
            assert v == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (torch.cuda.is_available() is False)")
def test_a_cuda_run_groups_the_shard_and_gives_the_cpu_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA the shard is one group (every metric prepared once, batched) and each row is the CPU's within the
    metric's CUDA tolerance (tests/metrics/test_device_paths.py)."""
    from tests.metrics.test_device_paths import TOLERANCE

    make_refset(tmp_path / "set", n=4, side=192)
    cpu = _rows(tmp_path, "cpu")
    prepared: list[int] = []
    real = shard.ShardRunner._prepare
    monkeypatch.setattr(shard.ShardRunner, "_prepare",
                        lambda self, samples: (prepared.append(len(samples)), real(self, samples))[1])
    cuda = _rows(tmp_path, "cuda", device="cuda")
    assert prepared == [4] and cuda.keys() == cpu.keys()
    for key, (value, status, detail) in cpu.items():
        v, st, _ = cuda[key]
        assert st == status, (key, detail)
        if value is not None and key[2] != "case":
            atol, rtol = TOLERANCE[key[2]]
            assert v == pytest.approx(value, abs=atol, rel=rtol), key
