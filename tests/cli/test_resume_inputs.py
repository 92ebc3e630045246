"""Resume audit L1, M3, L4 and H3 (the message): what `qa run --resume` does with the options it is given, with a
finished run, and with a run's set metrics.

* L1/M3: `--seeds`, `--metrics`, `--set`, `--decoder`, `--shard-size`, `--batch-size`, `--reference-set` and
  `--device` given with `--resume` were dropped without a word (`--device cuda` ran the rest of a CPU run on CUDA
  while the run row said cpu). A differing one is now an error naming it; one equal to the run's own is accepted. A
  run started with a relative reference-set path, resumed from another folder, gets an error naming the stored
  path and the fix (it said "make one with `qa refset build`").
* L4: refusing a finished run said a plain `qa run` "reuses it"; it starts a new run.
* H3: a resume of a run with committed shards stores its set metrics (FID, KID, CLIP score, CMMD) `missing`; the
  resume now says so before it starts and, naming them and how to get them, after it ends.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from qa.cli.main import main
from qa.engine.run import RunConfig, RunEngine
from qa.metrics.base import ImageSample, SetMetric, SetValue
from qa.metrics.catalog import METRICS
from qa.store import Store
from tests.helpers import make_refset


class SetMean(SetMetric):
    """The mean pixel value over every output of the run: a set metric that needs no weights."""

    name = "test-set-mean"
    higher_is_better = None
    value_range = (0.0, 1.0)

    def __init__(self) -> None:
        self.values: list[float] = []

    def update(self, sample: ImageSample) -> None:
        self.values.append(float(np.mean(sample.output)))

    def compute(self) -> SetValue:
        return SetValue(float(np.mean(self.values)), n=len(self.values))

    def reset(self) -> None:
        self.values = []


def _stop_after_first_shard(index: int) -> None:
    if index == 0:
        raise KeyboardInterrupt("stopped after the first shard (test)")


def interrupted(tmp_path: Path, metrics: list[str], reference_set: str | None = None) -> tuple[Path, str]:
    """(db, run id) of a bicubic run over 4 tiles in shards of 2, interrupted after its first shard committed."""
    root = make_refset(tmp_path / "set", n=4)
    db = tmp_path / "qa.duckdb"
    store = Store(db)
    with pytest.raises(KeyboardInterrupt):
        RunEngine(store, on_shard=_stop_after_first_shard).start(RunConfig(
            decoder="bicubic", reference_set=reference_set or str(root), metrics=metrics, seeds=[0, 1], shard_size=2,
            progress=False))
    rows = store.query("select run_id, status from runs")
    assert len(rows) == 1 and rows[0][1] == "interrupted"
    return db, str(rows[0][0])


def qa(*argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of the qa CLI."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _state(db: Path, run_id: str) -> tuple[object, ...]:
    store = Store(db)
    return (store.query("select status, device, seeds from runs where run_id = ?", [run_id])[0],
            store.query("select count(*) from shards where run_id = ?", [run_id])[0][0],
            store.query("select count(*) from results where run_id = ?", [run_id])[0][0])


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--seeds", "1", "--seeds 1 (the run's seeds: 0, 1)"),
    ("--metrics", "ssim", "--metrics ssim (the run's metrics: psnr)"),
    ("--set", "factor=2", "--set factor=2 (the run's decoder settings (--set): none)"),
    ("--decoder", "identity", "--decoder identity (the run's decoder: bicubic)"),
    ("--shard-size", "1", "--shard-size 1 (the run's shard size (its shard split is fixed): 2)"),
    ("--batch-size", "3", "--batch-size 3 (the run's batch size: default)"),
    ("--device", "cuda", "--device cuda (the run's device: cpu)"),
    ("--reference-set", "default", "--reference-set default (the run's reference set: "),
])
def test_an_option_that_differs_from_the_resumed_runs_is_refused_naming_it(
        tmp_path: Path, option: str, value: str, says: str) -> None:
    db, run_id = interrupted(tmp_path, ["psnr"])
    before = _state(db, run_id)
    code, out, err = qa("run", "--resume", run_id, option, value, "--db", str(db), "--no-progress")
    assert code == 2 and out == ""
    assert f"--resume {run_id}: a resumed run keeps its own options, and these differ from them: {says}" in err
    assert f"drop them to finish the run as it started (`qa run --resume {run_id}`)" in err
    assert _state(db, run_id) == before  # nothing ran, nothing was recorded


def test_options_equal_to_the_runs_own_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, run_id = interrupted(tmp_path, ["psnr"])
    monkeypatch.chdir(tmp_path)  # the same set, named by another path
    code, out, err = qa("run", "--resume", run_id, "--seeds", "2", "--metrics", "psnr", "--decoder", "bicubic",
                        "--shard-size", "2", "--device", "cpu", "--reference-set", "set", "--db", str(db),
                        "--no-progress")
    assert code == 0, err
    assert out.strip() == run_id
    assert _state(db, run_id)[:2] == (("finished", "cpu", "[0, 1]"), 2)


def test_a_relative_reference_set_resumed_from_another_folder_names_the_stored_path_and_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db, run_id = interrupted(tmp_path, ["psnr"], reference_set="set")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = qa("run", "--resume", run_id, "--db", str(db), "--no-progress")
    assert code == 2
    assert f"run {run_id}'s reference set 'set' is not found from {elsewhere}" in err
    assert "relative to the folder it was started in" in err
    assert f"run `qa run --resume {run_id}` from that folder" in err and "qa refset build" not in err
    monkeypatch.chdir(tmp_path)  # from where it started, it resumes
    assert qa("run", "--resume", run_id, "--db", str(db), "--no-progress")[0] == 0


def test_a_finished_run_is_refused_with_what_a_plain_qa_run_really_does(tmp_path: Path) -> None:
    db, run_id = interrupted(tmp_path, ["psnr"])
    assert qa("run", "--resume", run_id, "--db", str(db), "--no-progress")[0] == 0
    code, _, err = qa("run", "--resume", run_id, "--db", str(db), "--no-progress")
    assert code == 2 and f"run {run_id} finished already" in err
    assert "reuses it" not in err and "a plain `qa run` with the same inputs starts a new run" in err
    # and it does: the same inputs give another run id
    code, out, _ = qa("run", "--decoder", "bicubic", "--reference-set", str(tmp_path / "set"), "--seeds", "2",
                      "--metrics", "psnr", "--shard-size", "2", "--db", str(db), "--no-progress")
    assert code == 0 and out.strip() and out.strip() != run_id


def test_a_resume_says_before_and_after_that_its_set_metrics_are_stored_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    METRICS.names()
    monkeypatch.setitem(METRICS._targets, SetMean.name, SetMean)  # noqa: SLF001 - test-only registration
    db, run_id = interrupted(tmp_path, ["psnr", SetMean.name])
    code, out, err = qa("run", "--resume", run_id, "--db", str(db), "--no-progress")
    assert code == 0 and out.strip() == run_id
    lines = [line for line in err.splitlines() if line.strip()]
    note = next(i for i, line in enumerate(lines) if line.startswith("qa run: note: 1 of 2 shard(s)"))
    starts = next(i for i, line in enumerate(lines) if line.startswith(f"qa: run {run_id} (bicubic)"))
    assert note < starts, lines  # said before the run goes on
    assert f"its set metric(s) {SetMean.name} will be stored `missing`" in lines[note]
    after = [line for line in lines[starts:] if line.startswith(f"qa run: warning: run {run_id} was resumed")]
    assert len(after) == 1, lines
    assert f"set metric(s) {SetMean.name} are stored missing (run was resumed" in after[0]
    assert "--fresh-run" in after[0] and "qa run --decoder bicubic --reference-set" in after[0]
    assert Store(db).query("select status from set_results where run_id = ? and metric = ?",
                           [run_id, SetMean.name]) == [("missing",)]


def test_a_resume_without_set_metrics_says_nothing_about_them(tmp_path: Path) -> None:
    db, run_id = interrupted(tmp_path, ["psnr"])
    code, _, err = qa("run", "--resume", run_id, "--db", str(db), "--no-progress")
    assert code == 0 and "set metric" not in err
