"""The run engine: perfect identity, error isolation, kill and resume, concurrent writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.engine.run import RunConfig, RunEngine
from qa.errors import UnknownNameError
from qa.store import Store
from tests.helpers import make_refset, register_test_decoders

ROOT = Path(__file__).resolve().parents[2]


def results(store: Store, run_id: str) -> list[tuple]:
    return store.query(
        "select case_id, seed, metric, value, status from results where run_id = ? order by 1, 2, 3", [run_id])


def test_identity_scores_perfectly(tmp_path: Path) -> None:
    refset = make_refset(tmp_path / "set")
    store = Store(tmp_path / "qa.duckdb")
    run_id = RunEngine(store).start(RunConfig(decoder="identity", reference_set=str(refset),
                                              metrics=["psnr", "ssim"], progress=False))
    rows = {(m, s) for _, _, m, _, s in results(store, run_id)}
    assert rows == {("case", "ok"), ("psnr", "ok"), ("ssim", "ok")}
    vals = store.query("select metric, value from results where run_id = ? and metric != 'case'", [run_id])
    assert all(v == float("inf") for m, v in vals if m == "psnr")
    assert all(v == pytest.approx(1.0, abs=1e-9) for m, v in vals if m == "ssim")
    status, n = store.query("select status, n_cases from runs where run_id = ?", [run_id])[0]
    assert (status, n) == ("finished", 6)
    prov = store.query("select qa_version, git_commit, reference_set_sha256, identity_sha256 from runs")[0]
    assert all(prov[i] for i in (0, 2, 3))


def test_bad_cases_are_error_rows_and_run_finishes(tmp_path: Path) -> None:
    register_test_decoders()
    root = tmp_path / "set"
    root.mkdir()
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    extra = [{"id": "broken", "file": "broken.png", "caption": "x"},
             {"id": "escape", "file": "../../etc/passwd", "caption": "x"}]
    make_refset(root, extra=extra)
    store = Store(tmp_path / "qa.duckdb")
    engine = RunEngine(store)
    for decoder, bad_case, phrase in (("raising", "tile02", "planted failure"), ("nan", "tile03", "NaN")):
        run_id = engine.start(RunConfig(decoder=decoder, reference_set=str(root), metrics=["psnr"], progress=False))
        rows = store.query("select case_id, status, detail from results where run_id = ? and metric = 'psnr'", [run_id])
        by_case = {c: (s, d) for c, s, d in rows}
        assert by_case[bad_case][0] == "error" and phrase in by_case[bad_case][1] and bad_case in by_case[bad_case][1]
        assert by_case["broken"][0] == "error" and "broken.png" in by_case["broken"][1]
        assert by_case["escape"][0] == "error" and "escapes the set folder" in by_case["escape"][1]
        good = [c for c, (s, _) in by_case.items() if s == "ok"]
        assert len(good) == 5  # six tiles, one planted failure
        assert store.query("select status from runs where run_id = ?", [run_id])[0][0] == "finished"


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.engine.run_with_test_decoders", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    register_test_decoders()
    refset = make_refset(tmp_path / "set", n=8)
    db = tmp_path / "qa.duckdb"
    args = ["run", "--decoder", "slow-bicubic", "--reference-set", str(refset), "--db", str(db),
            "--shard-size", "1", "--metrics", "psnr,ssim", "--no-progress"]
    proc = _cli(args)
    store = Store(db)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and done < 3:
        time.sleep(0.2)
        if db.exists():
            done = store.query("select count(*) from shards")[0][0]
    assert done >= 3, "the run never committed three shards"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run_id, status = store.query("select run_id, status from runs")[0]
    assert status == "running"  # killed: never marked finished
    committed = store.query("select count(*) from shards where run_id = ?", [run_id])[0][0]
    assert 3 <= committed < 8
    RunEngine(store).resume(run_id, progress=False)
    assert store.query("select status from runs where run_id = ?", [run_id])[0][0] == "finished"
    fresh = RunEngine(store).start(RunConfig(decoder="slow-bicubic", reference_set=str(refset),
                                             metrics=["psnr", "ssim"], shard_size=1, progress=False))
    resumed_rows, fresh_rows = results(store, run_id), results(store, fresh)
    assert len(resumed_rows) == 8 * (1 + 2 * 2)  # case row + two metrics x two seeds per case, nothing twice
    assert resumed_rows == fresh_rows


def test_two_processes_share_one_database(tmp_path: Path) -> None:
    refset = make_refset(tmp_path / "set", n=8)
    db = tmp_path / "qa.duckdb"
    args = ["run", "--reference-set", str(refset), "--db", str(db), "--shard-size", "1",
            "--metrics", "psnr,ssim", "--no-progress"]
    procs = [_cli([*args, "--decoder", "slow-bicubic"]), _cli([*args, "--decoder", "bicubic"])]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    store = Store(db)
    runs = store.query("select run_id, status from runs order by run_id")
    assert len(runs) == 2 and all(s == "finished" for _, s in runs)
    for run_id, _ in runs:
        assert store.query("select count(*) from results where run_id = ?", [run_id])[0][0] == 8 * (1 + 2 * 2)


def test_unknown_decoder_suggests_close_match(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'bicubic'"):
        RunEngine(Store(tmp_path / "qa.duckdb")).start(RunConfig(decoder="bicubc", reference_set="x"))
