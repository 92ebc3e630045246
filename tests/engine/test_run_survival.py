"""Runs that survive what users do to them: the reproductions of issue 18 (breaks 1-3, 10, 11 and the small
ones), each as a test named after what it proves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from qa.cli.main import main as qa_main
from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.errors import ManifestError, QAError, WeightsMissingError
from qa.hashing import sha256_file
from qa.refset.build import build_reference_set
from qa.store import Store
from tests.helpers import make_refset

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS_ENV = "QA_TEST_DECODER_WEIGHTS"


class WeightedBicubic(BicubicDecoder):
    """Bicubic whose 'weights' are the file named by $QA_TEST_DECODER_WEIGHTS (its sha256 is the run's)."""

    family = "weighted-bicubic"

    def weights_sha256(self) -> str:
        return sha256_file(Path(os.environ[WEIGHTS_ENV]))


class CorruptWeightsBicubic(BicubicDecoder):
    """Bicubic that raises qa's own error (message + hint) on tile02, as a decoder with a truncated file does."""

    family = "corrupt-weights"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        if "tile02" in batch.case_ids:
            raise WeightsMissingError("weights file /w/model.safetensors is truncated (412 of 9000 bytes)",
                                      "the weights are corrupt: re-import them with `qa weights import PATH`")
        return super().decode(batch, seed)


class InterruptedBicubic(BicubicDecoder):
    """Bicubic that receives Ctrl-C while decoding tile03."""

    family = "interrupted-bicubic"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        if "tile03" in batch.case_ids:
            raise KeyboardInterrupt
        return super().decode(batch, seed)


@pytest.fixture(autouse=True)
def _decoders() -> None:
    from qa.decoders.catalog import DECODERS

    for cls in (WeightedBicubic, CorruptWeightsBicubic, InterruptedBicubic):
        if cls.family not in DECODERS:
            DECODERS.register(cls.family, cls)


class Stop(Exception):
    """Raised from on_shard: the run stops after its first shard (as if killed)."""


def _stop(index: int) -> None:
    raise Stop(f"planted stop after shard {index}")


def test_duplicate_manifest_id_is_refused_naming_both_rows_at_run_start_and_refset_build(tmp_path, capsys) -> None:
    """Break 1: a second row with an existing id is a clear error naming both lines before anything is stored
    (no ConstraintException, no run with 0 rows); `refset build` never writes two rows with one id."""
    root = make_refset(tmp_path / "set", n=3)
    rows = (root / "manifest.csv").read_text().splitlines()
    (root / "manifest.csv").write_text("\n".join(rows + [rows[1].replace("tile00.png", "tile02.png")]) + "\n")
    store = Store(tmp_path / "qa.duckdb")
    with pytest.raises(ManifestError, match=r"manifest.csv:5: duplicate id 'tile00'.*line 2 has the same id"):
        RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(root), metrics=["psnr"], progress=False))
    assert qa_main(["run", "--decoder", "bicubic", "--reference-set", str(root), "--metrics", "psnr",
                    "--db", str(store.path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "duplicate id 'tile00'" in err and "line 2" in err and "Traceback" not in err
    assert store.query("select count(*) from runs")[0][0] == 0
    folder = tmp_path / "imgs"  # a.png and a.jpg collide as 'a' and fall back to 'a.png'/'a.jpg'; a.png.png is 'a.png'
    folder.mkdir()
    for name in ("a.png", "a.jpg", "a.png.png"):
        Image.new("RGB", (32, 32), (10, 20, 30)).save(folder / name, format="PNG" if "png" in name else "JPEG")
    with pytest.raises(ManifestError, match=r"same id 'a.png': a.png and a.png.png"):
        build_reference_set(folder)
    assert not (folder / "manifest.csv").exists()


def test_resume_refuses_a_changed_identity_with_the_reason_and_a_resumed_run_ends_clean(tmp_path, monkeypatch) -> None:
    """Break 2 (and 11's status): weights swapped between interruption and resume, another qa version or metric
    version: resume refuses with the reason and stores nothing; resumed with the original, the run finishes
    with runs.error cleared and the same rows as an uninterrupted run."""
    refset = make_refset(tmp_path / "set", n=4)
    weights_a, weights_b = tmp_path / "a.bin", tmp_path / "b.bin"
    weights_a.write_bytes(b"A" * 64)
    weights_b.write_bytes(b"B" * 64)
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_a))
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="weighted-bicubic", reference_set=str(refset), metrics=["psnr"], shard_size=2,
                    progress=False)
    with pytest.raises(Stop):
        RunEngine(store, on_shard=_stop).start(cfg)
    run_id, error = store.query("select run_id, error from runs")[0]
    assert "planted stop" in str(error)
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_b))
    with pytest.raises(QAError, match=r"cannot be resumed: the decoder's weights changed"):
        RunEngine(store).resume(run_id, progress=False)
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_a))
    with monkeypatch.context() as m:
        m.setattr("qa.engine.identity.__version__", "999.0")
        with pytest.raises(QAError, match=r"qa version changed \(.* -> 999.0\)"):
            RunEngine(store).resume(run_id, progress=False)
    with monkeypatch.context() as m:
        from qa.metrics.fidelity import PSNR

        m.setattr(PSNR, "version", "psnr-v999")
        with pytest.raises(QAError, match=r"metric versions changed \(psnr\)"):
            RunEngine(store).resume(run_id, progress=False)
    assert store.query("select count(*) from shards where run_id = ?", [run_id])[0][0] == 1  # nothing mixed in
    RunEngine(store).resume(run_id, progress=False)
    assert store.query("select status, error from runs where run_id = ?", [run_id])[0] == ("finished", None)
    fresh = RunEngine(store).start(cfg)
    q = "select case_id, seed, metric, value, status from results where run_id = ? order by 1, 2, 3"
    assert store.query(q, [run_id]) == store.query(q, [fresh]) and len(store.query(q, [run_id])) == 4 * 3


def test_decoder_error_rows_keep_message_and_hint(tmp_path) -> None:
    """Break 3: a decoder failing with qa's own error stores the cause (file, what happened) and the hint."""
    refset = make_refset(tmp_path / "set", n=4)
    store = Store(tmp_path / "qa.duckdb")
    run_id = RunEngine(store).start(RunConfig(decoder="corrupt-weights", reference_set=str(refset), metrics=["psnr"],
                                              progress=False))
    detail = str(store.query("select detail from results where run_id = ? and case_id = 'tile02' and metric = 'psnr' "
                             "limit 1", [run_id])[0][0])
    assert detail.startswith("tile02: decoder failed: WeightsMissingError: weights file /w/model.safetensors is "
                             "truncated (412 of 9000 bytes); hint: the weights are corrupt")
    assert "\n" not in detail


def _small_db(tmp_path: Path) -> Path:
    refset = make_refset(tmp_path / "set", n=2)
    store = Store(tmp_path / "qa.duckdb")
    RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(refset), metrics=["psnr"], progress=False))
    return store.path


def test_a_damaged_database_gives_one_line_and_a_gate_exits_2(tmp_path, capsys) -> None:
    """Break 10: a truncated DB file: `qa status`, `qa gate` and `qa run` print one error line and a hint, no
    traceback, and the gate exits 2 (could not decide), not 1 (fail); so does a folder given as --db."""
    db = _small_db(tmp_path)
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size // 2)
    for args in (["status"], ["gate", "--run", "latest"],
                 ["run", "--decoder", "bicubic", "--reference-set", str(tmp_path / "set"), "--no-progress"]):
        assert qa_main([*args, "--db", str(db)]) == 2, args
        err = capsys.readouterr().err
        assert "damaged" in err and "hint: restore it from a backup" in err and "Traceback" not in err, (args, err)
    folder = tmp_path / "a-folder.duckdb"
    folder.mkdir()
    assert qa_main(["status", "--db", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a DuckDB file" in err and "close the other process" not in err


def test_a_full_disk_gives_one_line_exit_2_and_the_run_resumes_clean(tmp_path) -> None:
    """Break 11: writes beyond a file-size limit (EFBIG, what a full disk does to a write) while a run commits:
    one line naming the run and how to resume it, exit 2, no traceback; the resumed run ends finished and clean."""
    refset = make_refset(tmp_path / "set", n=4)
    db = tmp_path / "qa.duckdb"
    Store(db).query("select 1")  # create the schema unrestricted
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (30000, 30000))\n"
            "from qa.cli.main import main\n"
            f"sys.exit(main(['run', '--decoder', 'bicubic', '--reference-set', {str(refset)!r}, '--metrics', 'psnr',"
            f" '--shard-size', '1', '--db', {str(db)!r}, '--no-progress']))\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "no space left to write it" in proc.stderr
    assert "qa run --resume" in proc.stderr
    store = Store(db)
    run_id, status = store.query("select run_id, status from runs")[0]
    assert status in ("failed", "running")  # marked failed when the disk allowed it
    RunEngine(store).resume(str(run_id), progress=False)
    assert store.query("select status, error from runs")[0] == ("finished", None)
    assert store.query("select count(*) from results where metric = 'psnr' and status = 'ok'")[0][0] == 4 * 2


def test_ctrl_c_surfaces_as_an_interrupt_not_a_transaction_error(tmp_path, capsys) -> None:
    """Break 11: Ctrl-C inside a write whose transaction DuckDB already ended: the interrupt surfaces (not a
    TransactionException from the rollback); `qa run` says 'interrupted', exits 130, the run is 'interrupted'."""
    store = Store(tmp_path / "qa.duckdb")
    with pytest.raises(KeyboardInterrupt):
        with store.transaction() as con:
            con.execute("commit")  # what an interrupted or failed statement leaves: no active transaction
            raise KeyboardInterrupt
    refset = make_refset(tmp_path / "set", n=4)
    assert qa_main(["run", "--decoder", "interrupted-bicubic", "--reference-set", str(refset), "--metrics", "psnr",
                    "--shard-size", "2", "--db", str(store.path), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert store.query("select status, error from runs")[0] == ("interrupted", "KeyboardInterrupt: ")


@pytest.mark.parametrize("n", ["0", "-1", "100000"])
def test_seeds_outside_1_to_64_are_rejected(tmp_path, capsys, n) -> None:
    """Small break: --seeds 0 and -1 no longer silently become 1 seed; 100000 is refused too."""
    assert qa_main(["run", "--decoder", "bicubic", "--seeds", n, "--db", str(tmp_path / "qa.duckdb")]) == 2
    assert "a run decodes 1 to 64 seeds" in capsys.readouterr().err
    assert not (tmp_path / "qa.duckdb").exists()
    with pytest.raises(QAError, match="at least one seed|at most 64|distinct integers"):
        RunEngine(Store(tmp_path / "qa.duckdb")).create_run(RunConfig(decoder="bicubic", seeds=[] if n == "0" else [-1] if n == "-1" else list(range(int(n)))))
