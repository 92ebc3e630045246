"""Scale audit M3 (2026-12-07): a run killed outright (SIGKILL, an OOM kill) stays 'running' for ever, and `qa status`
showed it like a live one, with no progress and no way on; `qa gate` on it said "did not finish" and stopped there."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from qa.cli.main import main
from qa.engine.run import RunConfig, RunEngine
from qa.gate.status import status_output
from qa.store import runs as store_runs
from tests.engine.test_run_says_what_it_does import interrupted_run


def test_a_run_that_did_not_finish_says_how_far_it_got_and_how_to_finish(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store, run, refset = interrupted_run(tmp_path, monkeypatch, progress=False)
    store_runs.set_running(store, run.run_id)  # as a SIGKILL leaves it: no process marks it stopped
    hint = f"finish it with `qa run --resume {run.run_id}`"
    text = status_output(store, "stops-on-second-shard")
    assert "[running," in text and f"1 of 2 shards committed; {hint}" in text
    markdown = status_output(store, "stops-on-second-shard", "markdown")
    assert "1 of 2 shards committed" in markdown
    states = json.loads(status_output(store, "stops-on-second-shard", "json"))
    assert states[0]["runs"][0]["progress"].startswith("1 of 2 shards committed")

    finished = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(refset), metrics=["psnr"],
                                                progress=False))
    assert json.loads(status_output(store, "bicubic", "json"))[0]["runs"][0]["progress"] == ""
    assert finished
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["gate", "--run", run.run_id, "--baseline", "none", "--db", str(tmp_path / "qa.duckdb")])
    assert code == 1 and f"{hint}, then gate it again" in out.getvalue()
