"""Resume audit H4: a reference image replaced on disk during a run (a `git pull` of the set, a regenerated set) was
scored silently under the old image's hash: the run's rows for it were another image's. The files are hashed once,
when the set is loaded at the run's start; a case whose bytes no longer match is that case's error, never scored."""

from __future__ import annotations

import shutil
from pathlib import Path

from qa.engine.cases import load_case
from qa.engine.run import RunConfig, RunEngine
from qa.refset.manifest import load_reference_set
from qa.store import Store
from tests.helpers import make_refset

CHANGED = "changed on disk since the run started"


def test_a_file_changed_since_the_set_was_loaded_is_an_error_not_pixels(tmp_path: Path) -> None:
    refset = load_reference_set(make_refset(tmp_path / "set", n=2))
    same, changed = refset.items
    shutil.copyfile(same.path, changed.path)  # another image's bytes under tile01's name; the manifest untouched
    case = load_case(changed, 1)
    assert case.pixels is None and CHANGED in case.error
    assert case.error.startswith("tile01: tile01.png") and changed.sha256[:12] in case.error
    assert "restore the file, or start a new run" in case.error
    ok = load_case(same, 1)
    assert ok.pixels is not None and not ok.error


def test_a_run_does_not_score_a_reference_replaced_after_it_started(tmp_path: Path) -> None:
    root = make_refset(tmp_path / "set", n=4)
    store = Store(tmp_path / "qa.duckdb")

    def replace_last(index: int) -> None:  # after the first shard commits, as a `git pull` of the set would
        if index == 0:
            shutil.copyfile(root / "tile00.png", root / "tile03.png")

    run_id = RunEngine(store, on_shard=replace_last).start(RunConfig(
        decoder="bicubic", reference_set=str(root), metrics=["psnr"], seeds=[0], shard_size=2, progress=False))
    rows = store.query("select metric, status, detail from results where run_id = ? and case_id = 'tile03'", [run_id])
    assert rows and all(status == "error" and CHANGED in str(detail) for _, status, detail in rows), rows
    scored = store.query("select count(*) from results where run_id = ? and case_id <> 'tile03' and metric = 'psnr' "
                         "and status = 'ok'", [run_id])
    assert scored == [(3,)]  # the other cases are scored as usual
    assert store.query("select status from runs where run_id = ?", [run_id]) == [("finished",)]


def test_an_unchanged_set_loads_every_case(tmp_path: Path) -> None:
    refset = load_reference_set(make_refset(tmp_path / "set", n=3))
    assert all(load_case(item, 4).error == "" for item in refset.items)
