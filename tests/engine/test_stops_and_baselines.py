"""Scale audit (2026-12-07): `--resume` of a finished run rewrote it and broke its sign-off; a SIGTERM (a CI job
cancelled, `timeout`) left a run 'running' for ever with no word on how to finish it; a decoder whose baseline
(its plain decode) held NaN on one image passed its required checks against the plain decode over the others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.gate.evaluate import gate_run
from qa.gate.policy import parse_policy
from qa.store import Store
from qa.store import results as store_results
from tests.helpers import make_refset, register_test_decoders

ROOT = Path(__file__).resolve().parents[2]


class NaNBaselineBicubic(BicubicDecoder):
    """Bicubic x4 whose baseline (a plain decode of the same latent: here the same bicubic) has NaN on tile01."""

    family = "nan-baseline-bicubic"

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        out = self.decode(batch, 0)
        for i, case_id in enumerate(batch.case_ids):
            if case_id == "tile01":
                out[i, :, :8, :8] = float("nan")
        return out


def test_a_baseline_with_nan_fails_its_case_naming_the_baseline_and_the_gate_fails(tmp_path: Path) -> None:
    if NaNBaselineBicubic.family not in DECODERS:
        DECODERS.register(NaNBaselineBicubic.family, NaNBaselineBicubic)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder=NaNBaselineBicubic.family, reference_set=str(make_refset(tmp_path / "set", n=3)),
                    metrics=["psnr", "agreement_psnr"], seeds=[0], progress=False)
    run = RunEngine(store).start(cfg, NaNBaselineBicubic(name=NaNBaselineBicubic.family))
    problems = store_results.case_problems(store, run)
    assert list(problems) == ["tile01"] and "the decoder's baseline (its plain decode) returned" in problems["tile01"]
    policy = parse_policy({"policy": {"track": "upscale", "n_boot": 200}, "metrics": {"psnr": {"min": 10.0}}})
    result = gate_run(store, run, policy, "none")
    cases = next(r for r in result.results if r.kind == "cases")
    assert result.verdict == "fail" and cases.verdict == "fail"


def test_resume_refuses_a_finished_run_and_leaves_it_as_it_is(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="bicubic", reference_set=str(make_refset(tmp_path / "set", n=2)), metrics=["psnr"],
                    seeds=[0], progress=False)
    run = RunEngine(store).start(cfg)
    before = store.query("select status, finished_at from runs")
    with pytest.raises(QAError, match="finished already: there is nothing to resume"):
        RunEngine(store).resume(run, progress=False)
    assert store.query("select status, finished_at from runs") == before


def test_sigterm_marks_the_run_interrupted_and_says_how_to_finish_it(tmp_path: Path) -> None:
    refset = make_refset(tmp_path / "set", n=6)
    db = tmp_path / "qa.duckdb"
    code = ("import sys\n"
            "from tests.helpers import register_test_decoders\n"
            "register_test_decoders()\n"
            "from qa.cli.main import main\n"
            f"sys.exit(main(['run', '--decoder', 'slow-bicubic', '--reference-set', {str(refset)!r}, '--metrics', "
            f"'psnr', '--shard-size', '1', '--db', {str(db)!r}, '--no-progress']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for a first committed shard
        time.sleep(0.5)
        if db.exists() and Store(db).query("select count(*) from shards")[0][0] >= 1:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    run_id, status = Store(db).query("select run_id, status from runs")[0]
    assert status == "interrupted"
    assert f"finish it with `qa run --resume {run_id}`" in err and "Traceback" not in err
    register_test_decoders()
    RunEngine(Store(db)).resume(str(run_id), progress=False)
    assert Store(db).query("select status from runs")[0][0] == "finished"


def test_the_decoders_batch_is_a_pixel_budget_unless_given() -> None:
    """Scale audit M1: a batch declared for 256-px tiles was used at 2048 px (taef2: 15 GB for 4 images)."""
    from qa.engine.shard import ShardRunner

    runner = ShardRunner(BicubicDecoder(), [], [0])
    assert [runner.batch_for((s, s)) for s in (128, 256, 512, 1024, 2048)] == [32, 32, 8, 2, 1]
    assert ShardRunner(BicubicDecoder(), [], [0], batch_size=4).batch_for((2048, 2048)) == 4  # --batch-size
