"""`qa export` names the run it holds (report audit M4): two runs of one decoder that differ by a setting, and a
run that was interrupted, export with their own decoder settings, run status, start time (UTC), seeds, device and
identity, read back from Parquet and CSV and compared with what the store holds."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from qa.cli.main import main
from qa.gate.data import run_settings
from qa.store import Store
from qa.store import runs as store_runs
from qa.store.frames import runs_frame
from tests.helpers import make_refset

#: the columns that identify a run, the same on every row of its export
IDENTITY = ("decoder", "family", "backend", "track", "scale", "run_status", "started_at", "finished_at",
            "reference_set", "reference_set_sha256", "seeds", "decoder_settings", "weights_sha256", "encoder_sha256",
            "identity_sha256", "qa_version", "git_commit", "device", "suite")


def _qa(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(list(argv)) == 0
    return out.getvalue().strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """bicubic x2 and x4 (`--set factor=N`) on a 4-tile set, psnr only; then the x4 run marked interrupted."""
    root = tmp_path_factory.mktemp("exportprov")
    refset = make_refset(root / "set", n=4)
    db = root / "qa.duckdb"
    common = ["--reference-set", str(refset), "--metrics", "psnr", "--db", str(db), "--no-progress"]
    x2 = _qa("run", "--decoder", "bicubic", "--set", "factor=2", *common)
    x4 = _qa("run", "--decoder", "bicubic", "--set", "factor=4", *common)
    store_runs.set_stopped(Store(db), x4, "interrupted", "planted: stopped by the test")
    return {"root": root, "db": db, "x2": x2, "x4": x4}


def _export(world: dict[str, object], run_id: str, suffix: str) -> pd.DataFrame:
    out = Path(str(world["root"])) / f"{run_id}{suffix}"
    _qa("export", "--run", run_id, "--out", str(out), "--db", str(world["db"]))
    return pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out, keep_default_na=False)


def _one(frame: pd.DataFrame, col: str) -> object:
    values = set(frame[col].astype(str))
    assert len(values) == 1, (col, values)  # the run's value, the same on every row
    return frame[col].iloc[0]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_carries_the_runs_settings_status_start_seeds_and_device(world, suffix: str) -> None:  # noqa: ANN001
    store = Store(world["db"])  # type: ignore[arg-type]
    stored = runs_frame(store).set_index("run_id")
    for key, factor, status in (("x2", 2, "finished"), ("x4", 4, "interrupted")):
        rid = str(world[key])
        df = _export(world, rid, suffix)
        assert set(df["run_id"]) == {rid}
        settings = str(_one(df, "decoder_settings"))
        assert json.loads(settings) == run_settings(store, rid) == {"factor": factor}
        assert settings == json.dumps({"factor": factor}, sort_keys=True, separators=(",", ":"))  # canonical
        assert _one(df, "run_status") == status == stored.loc[rid, "status"]
        assert set(df["status"]) <= {"ok", "missing", "error"}  # the row's own status is kept apart
        started = pd.Timestamp(str(_one(df, "started_at")))
        assert started.tzname() == "UTC" and started == pd.Timestamp(stored.loc[rid, "started_at"]).tz_localize("UTC")
        assert json.loads(str(_one(df, "seeds"))) == json.loads(stored.loc[rid, "seeds"])
        assert int(str(_one(df, "scale"))) == factor == stored.loc[rid, "scale"]
        for col in ("device", "weights_sha256", "git_commit", "qa_version", "reference_set_sha256", "track"):
            assert str(_one(df, col)) == str(stored.loc[rid, col] or ""), col
        assert _one(df, "identity_sha256") == store_runs.get_run(store, rid).identity_sha256  # type: ignore[union-attr]
        assert _one(df, "encoder_sha256") == store_runs.resume_row(store, rid).encoder_sha256  # type: ignore[union-attr]


def test_exports_of_two_runs_differing_by_a_setting_differ_in_their_provenance(world) -> None:  # noqa: ANN001
    a, b = (_export(world, str(world[k]), ".csv") for k in ("x2", "x4"))
    prov_a, prov_b = (frame[list(IDENTITY)].drop_duplicates() for frame in (a, b))
    assert len(prov_a) == len(prov_b) == 1 and list(a.columns[-len(IDENTITY):]) == list(IDENTITY)
    differ = {c for c in IDENTITY if str(prov_a[c].iloc[0]) != str(prov_b[c].iloc[0])}
    assert {"decoder_settings", "run_status", "started_at", "identity_sha256", "scale"} <= differ
    assert {"decoder", "weights_sha256", "reference_set_sha256", "git_commit", "device"}.isdisjoint(differ)
