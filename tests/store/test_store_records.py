"""qa/store: typed records round-trip through the tables, and a database of an older schema still loads."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from qa.store import Store
from qa.store import results as store_results
from qa.store import runs as store_runs
from qa.store.records import CaseRecord, NewRun, ResultRow, SetResult
from qa.store.schema import LATEST_VERSION, MIGRATIONS

T0 = datetime(2026, 1, 2, 3, 4, 5)


def _new_run(run_id: str, scale: int | None = 4) -> NewRun:
    return NewRun(run_id=run_id, started_at=T0, suite="t", decoder="bicubic", family="simple", backend="numpy",
                  track="upscale", weights_sha256="", encoder_sha256="e" * 64, reference_set="tiny",
                  reference_set_sha256="r" * 64, seeds=[0, 1], qa_version="0.1.0", git_commit="abc", device="cpu",
                  config={"decoder": "bicubic", "base_identity_sha256": "b" * 64, "metric_versions": {"psnr": "1"}},
                  identity_sha256="i" * 64, n_shards=1, n_cases=2, scale=scale)


def test_a_run_round_trips_as_records(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    store_runs.insert_run(store, _new_run("r1"), [CaseRecord("r" * 64, "c1", "tiny", "c1", "c1.png", "s" * 64, "a cat")])
    rows = [ResultRow("c1", 0, "psnr", 30.5, "ok", "", "1"), ResultRow("c1", 1, "psnr", None, "error", "boom", "1")]
    assert store_results.commit_shard(store, "r1", 0, rows, [("c1", 0, "output", b"png")], 1)
    assert not store_results.commit_shard(store, "r1", 0, rows, [], 1)  # committed once: nothing counted twice
    assert store_results.done_shards(store, "r1") == {0}
    store_results.finish_run(store, "r1", [SetResult("r1", "psnr", 30.5, 29.0, 32.0, 1, "ok", "", "1"),
                                           SetResult.missing("r1", "fid", "missing", "no weights", "2")])
    run = store_runs.get_run(store, "r1")
    assert run is not None
    assert (run.status, run.scale, run.track, run.seeds, run.n_cases) == ("finished", 4, "upscale", (0, 1), 2)
    assert [(r.seed, r.value, r.status, r.detail) for r in store_results.metric_rows(store, "r1", "psnr")] == [
        (0, 30.5, "ok", ""), (1, None, "error", "boom")]
    sets = store_results.set_results_of(store, ["r1"])["r1"]
    assert (sets["psnr"].value, sets["psnr"].ci_low, sets["psnr"].n) == (30.5, 29.0, 1)
    assert (sets["fid"].value, sets["fid"].status, sets["fid"].detail) == (None, "missing", "no weights")
    assert store_runs.finished_with_identity(store, "i" * 64) == "r1"
    assert store_runs.finished_with_base_identity(store, "b" * 64)[0][0] == "r1"
    assert store_runs.decoder_scale(store, "bicubic") == 4
    assert store_results.captions(store, ["r" * 64]) == {("r" * 64, "c1"): "a cat"}


def _old_database(path: Path) -> None:
    """A file as qa wrote it before migration 3: schema version 2, a 22-column ``runs`` row."""
    con = duckdb.connect(str(path))
    con.execute("create table schema_version (version integer primary key, description varchar, applied_at timestamp)")
    for version, description, statements in MIGRATIONS[:2]:
        for sql in statements:
            con.execute(sql)
        con.execute("insert into schema_version values (?, ?, now())", [version, description])
    con.execute("insert into runs values (?, ?, ?, 'finished', 'demo', 'bicubic', 'simple', 'numpy', 'upscale', '', "
                "'', 'tiny', ?, ?, '0.1.0', '', 'cpu', ?, ?, 1, 1, null)",
                ["old1", T0, T0, "r" * 64, json.dumps([0]), json.dumps({"decoder_settings": {"k": 1}}), "i" * 64])
    con.execute("insert into results values ('old1', 'c1', 0, 'psnr', 31.0, 'ok', '', '1')")
    con.close()


def test_a_database_of_the_previous_schema_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_database(path)
    store = Store(path)
    with store.snapshot() as db:  # read-only: nothing migrated, the later column reads as null
        runs = store_runs.runs_in_window(db, None, None)
        assert [(r.run_id, r.scale, r.track, r.seeds) for r in runs] == [("old1", None, "upscale", (0,))]
        assert store_runs.decoder_scale(db, "bicubic") is None
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select max(version) from schema_version").fetchone() == (2,)
    con.close()
    run = store_runs.get_run(store, "old1")  # a writing open upgrades the file, additively
    assert run is not None and run.scale is None and run.status == "finished"
    assert store_runs.run_config(store, "old1") == {"decoder_settings": {"k": 1}}
    assert [r.value for r in store_results.metric_rows(store, "old1", "psnr")] == [31.0]
    assert store.query("select max(version) from schema_version") == [(LATEST_VERSION,)]


def test_reading_a_run_that_is_not_there_gives_none(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    assert store_runs.get_run(store, "nope") is None
    assert store_runs.resume_row(store, "nope") is None
    assert store_runs.run_config(store, "nope") is None
    with pytest.raises(Exception, match="does not exist"):
        with Store(tmp_path / "absent.duckdb").snapshot():
            pass
