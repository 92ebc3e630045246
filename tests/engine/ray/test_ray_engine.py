"""The Ray engine on a local 2-worker cluster: same results as the local engine, worker death, driver resume."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'qa[ray]'")

from qa.engine import ray_engine, ray_worker  # noqa: E402
from qa.engine.run import RunConfig, RunEngine  # noqa: E402
from qa.store import Store  # noqa: E402
from tests.engine.ray.helpers import KILL_CASE, ChannelMeans, setup  # noqa: E402
from tests.helpers import make_refset  # noqa: E402

feature_cache = pytest.importorskip("qa.metrics.feature_cache")
to_uint8 = feature_cache.to_uint8

METRICS = ["psnr", "ssim", "test-set-mae", "test-set-mae-merge", "test-feature-set"]


@pytest.fixture(scope="module")
def cluster():  # noqa: ANN201
    """One local Ray cluster with 2 CPUs (2 worker actors) for the whole module."""
    setup()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def results(store: Store, run_id: str) -> list[tuple]:
    return store.query("select case_id, seed, metric, value, status from results where run_id = ? order by 1, 2, 3",
                       [run_id])


def set_results(store: Store, run_id: str) -> dict[str, tuple]:
    rows = store.query("select metric, value, ci_low, ci_high, n, status, detail from set_results where run_id = ?",
                       [run_id])
    return {r[0]: r[1:] for r in rows}


def seed_reference_features(store: Store, refset: Path) -> int:
    """Put the test extractor's vectors of every reference file in the features table, keyed by file sha256."""
    from qa.hashing import sha256_file
    from qa.imageio import load_image

    net = ChannelMeans()
    rows = []
    for png in sorted(refset.glob("*.png")):
        pixels = to_uint8(load_image(png).pixels)
        rows.append([net.name, net.sha256, sha256_file(png), net.preprocessing, net([pixels])[0].tolist()])
    with store.transaction() as con:
        con.executemany("insert or replace into features values (?, ?, ?, ?, ?)", rows)
    return len(rows)


def config(refset: Path, decoder: str, **kw) -> RunConfig:  # noqa: ANN003
    return RunConfig(decoder=decoder, reference_set=str(refset), seeds=[0, 1], shard_size=2, metrics=METRICS,
                     progress=False, **kw)


@pytest.mark.parametrize("decoder", ["bicubic", "noisy-bicubic"])
def test_ray_results_equal_local(cluster, tmp_path: Path, decoder: str) -> None:  # noqa: ANN001
    refset = make_refset(tmp_path / "set", n=6)
    store = Store(tmp_path / "qa.duckdb")
    local = RunEngine(store).start(config(refset, decoder))
    n_refs = seed_reference_features(store, refset)  # as if an earlier run had cached the references' features
    distributed = ray_engine.start(store, config(refset, decoder), num_workers=2, worker_setup=setup)
    assert store.query("select status from runs where run_id = ?", [distributed])[0][0] == "finished"
    local_rows, ray_rows = results(store, local), results(store, distributed)
    seeds = len(json.loads(str(store.query("select seeds from runs where run_id = ?", [distributed])[0][0])))
    assert seeds == (2 if decoder == "noisy-bicubic" else len(json.loads(str(store.query(
        "select seeds from runs where run_id = ?", [local])[0][0]))))
    assert len(ray_rows) == 6 * (1 + 2 * seeds)  # case row + psnr + ssim per seed, each once
    assert sum(s == "ok" for *_, s in ray_rows) == len(ray_rows)
    assert ray_rows == local_rows  # exactly equal, value for value
    if decoder == "noisy-bicubic":  # the seeds really differ, so equality above is not trivially true
        psnr = {(c, s): v for c, s, m, v, _ in ray_rows if m == "psnr"}
        assert psnr[("tile00", 0)] != psnr[("tile00", 1)]
    local_set, ray_set = set_results(store, local), set_results(store, distributed)
    assert ray_set["psnr"] == local_set["psnr"] and ray_set["ssim"] == local_set["ssim"]
    assert ray_set["test-set-mae-merge"] == local_set["test-set-mae-merge"]  # merged from per-shard states
    # a set metric is fed each distinct output once (a deterministic decoder's seeds give one per case)
    distinct_outputs = 6 * seeds if decoder == "noisy-bicubic" else 6
    assert local_set["test-set-mae-merge"][3] == distinct_outputs and local_set["test-set-mae-merge"][4] == "ok"
    # the workers read the 6 cached reference vectors (shipped by the driver) and computed only the outputs'
    # (a deterministic decoder's seeds give one distinct output per case); the value equals the local one
    assert ray_set["test-feature-set"][:5] == local_set["test-feature-set"][:5]
    assert ray_set["test-feature-set"][5] == f"forward passes: {distinct_outputs}"
    # the local engine hands its store to the metric (feature cache): each distinct image goes through once
    assert local_set["test-feature-set"][5] == f"forward passes: {6 + distinct_outputs}"
    stored = store.query("select count(*) from features where extractor = 'test-channel-means'")[0][0]
    assert stored == n_refs + distinct_outputs  # the driver stored what the workers computed
    status, detail = ray_set["test-set-mae"][4:6]
    assert status == "missing" and "cannot merge" in detail  # fail closed, never a partial-set value
    workers = store.query("select distinct worker from shards where run_id = ?", [distributed])
    assert len(workers) == 2 and all(str(w[0]).startswith("ray:") for w in workers)
    images = "select case_id, seed, kind, png from images where run_id = ? order by 1, 2, 3"
    assert [r[:3] + (bytes(r[3]),) for r in store.query(images, [distributed])] == \
        [r[:3] + (bytes(r[3]),) for r in store.query(images, [local])]


def test_worker_killed_mid_shard_is_retried(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    refset = make_refset(tmp_path / "set", n=6)
    store = Store(tmp_path / "qa.duckdb")
    marker = tmp_path / "killed.txt"
    retries: list[tuple[int, str]] = []
    cfg = RunConfig(decoder="kill-once", reference_set=str(refset), shard_size=1, metrics=["psnr", "ssim"],
                    progress=False)
    run_id = ray_engine.start(store, cfg, num_workers=2, worker_setup=functools.partial(setup, str(marker)),
                              on_retry=lambda i, why: retries.append((i, why)))
    assert marker.exists(), "the planted worker death never happened"
    assert [i for i, _ in retries].count(3) >= 1 and "died" in retries[0][1]  # shard 3 holds tile03
    assert store.query("select status from runs where run_id = ?", [run_id])[0][0] == "finished"
    n_seeds = len(json.loads(str(store.query("select seeds from runs where run_id = ?", [run_id])[0][0])))
    cases = store.query("select case_id, count(*) from results where run_id = ? and metric = 'case' group by 1",
                        [run_id])
    assert sorted(cases) == [(f"tile{i:02d}", 1) for i in range(6)]  # every case present once
    counts = store.query("select case_id, seed, metric, count(*) from results where run_id = ? group by 1, 2, 3",
                         [run_id])
    assert len(counts) == 6 * (1 + 2 * n_seeds) and all(n == 1 for *_, n in counts)  # nothing twice
    assert store.query("select count(*) from shards where run_id = ?", [run_id])[0][0] == 6
    statuses = store.query("select status from results where run_id = ? and case_id = ?", [run_id, KILL_CASE])
    assert statuses and all(s == "ok" for (s,) in statuses)
    local = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(refset), shard_size=1,
                                             metrics=["psnr", "ssim"], progress=False))
    assert results(store, run_id) == results(store, local)


class _DriverDied(KeyboardInterrupt):
    """Stands for the driver being stopped after some shards were committed."""


def test_interrupted_driver_resumes_only_unfinished_shards(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    refset = make_refset(tmp_path / "set", n=6)
    store = Store(tmp_path / "qa.duckdb")
    committed: list[int] = []

    def stop_after_two(index: int) -> None:
        committed.append(index)
        if len(committed) == 2:
            raise _DriverDied()

    cfg = config(refset, "noisy-bicubic", batch_size=1)
    with pytest.raises(_DriverDied):
        ray_engine.start(store, cfg, num_workers=1, worker_setup=setup, on_shard=stop_after_two)
    run_id, status = store.query("select run_id, status from runs")[0]
    assert status == "interrupted"
    before = store.query("select shard_index, finished_at, worker from shards where run_id = ? order by 1", [run_id])
    assert len(before) == 2
    redone: list[int] = []
    ray_engine.resume(store, str(run_id), num_workers=1, worker_setup=setup, progress=False, on_shard=redone.append)
    assert sorted(redone) == sorted({0, 1, 2} - {r[0] for r in before})  # only the unfinished shards
    after = store.query("select shard_index, finished_at, worker from shards where run_id = ? order by 1", [run_id])
    assert [r for r in after if r[0] in {b[0] for b in before}] == before
    local = RunEngine(store).start(config(refset, "noisy-bicubic", batch_size=1))
    assert results(store, str(run_id)) == results(store, local)
    assert store.query("select status from runs where run_id = ?", [run_id])[0][0] == "finished"
    resumed_set = set_results(store, str(run_id))
    assert resumed_set["psnr"] == set_results(store, local)["psnr"]
    assert resumed_set["test-set-mae-merge"][4] == "missing" and "resumed" in resumed_set["test-set-mae-merge"][5]


def test_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    from qa.errors import QAError

    with pytest.raises(QAError, match=r"pip install 'qa\[ray\]'"):
        ray_engine.import_ray()


def test_set_metric_without_weights_is_stored_missing_on_ray_as_locally(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    """Break 12: CLIP-based set metrics whose weights are absent no longer kill the Ray run in export_state; the
    run finishes and stores them 'missing' with the same reason as the local engine."""
    from qa.metrics.catalog import METRICS

    if not METRICS.create("clip_score").unavailable_reason():
        pytest.skip("CLIP weights are present here; this reproduction needs them absent")
    refset = make_refset(tmp_path / "set", n=4)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="bicubic", reference_set=str(refset), seeds=[0], shard_size=2,
                    metrics=["psnr", "clip_score", "cmmd"], progress=False)
    distributed = ray_engine.start(store, cfg, num_workers=2, worker_setup=setup)
    local = RunEngine(store).start(cfg)
    assert store.query("select status, error from runs where run_id = ?", [distributed])[0] == ("finished", None)
    ray_set, local_set = set_results(store, distributed), set_results(store, local)
    for name in ("clip_score", "cmmd"):
        assert ray_set[name][4] == "missing" and "clip-vit-b-32-openai" in ray_set[name][5]
        assert ray_set[name] == local_set[name]
    assert ray_set["psnr"] == local_set["psnr"] and ray_set["psnr"][4] == "ok"


def test_a_set_state_that_cannot_be_exported_is_an_error_not_a_crash() -> None:
    from qa.metrics.base import SetMetric

    class Broken(SetMetric):
        name = "broken-export"

        def update(self, sample) -> None:  # noqa: ANN001
            pass

        def compute(self):  # noqa: ANN202
            raise AssertionError("not reached")

        def reset(self) -> None:
            pass

        def export_state(self) -> object:
            raise RuntimeError("planted export failure")

        def merge_state(self, state: object) -> None:
            pass

    states, errors = ray_worker.export_states([Broken()])
    assert states == {} and "planted export failure" in errors["broken-export"]


class _Terminated(Exception):  # noqa: N818 - what SIGTERM raises here when the driver does not handle it
    pass


def test_sigterm_to_the_driver_marks_the_run_interrupted(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    """Scale audit (2026-12-07): a cancelled CI job (SIGTERM) left a Ray run 'running' for ever; the single-machine
    engine already marked it interrupted. The test's own handler stands in for Python's default (which would end
    the test process) and would mark the run failed."""
    import os
    import signal

    refset = make_refset(tmp_path / "set", n=4)
    store = Store(tmp_path / "qa.duckdb")

    def terminated(_signum: int, _frame: object) -> None:
        raise _Terminated

    def term_after_first(_index: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            ray_engine.start(store, config(refset, "noisy-bicubic", batch_size=1), num_workers=1,
                             worker_setup=setup, on_shard=term_after_first)
        assert signal.getsignal(signal.SIGTERM) is terminated  # restored after the run
    finally:
        signal.signal(signal.SIGTERM, previous)
    run_id, status, error = store.query("select run_id, status, error from runs")[0]
    assert status == "interrupted" and "SIGTERM" in str(error)
