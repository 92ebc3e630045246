"""Resume audit (H2, M1, H1 part 3): a run's status changes are compare-and-set, and every way `qa run` stops once
the run row exists marks it and says how to finish it.

The "two processes" are two :class:`RunEngine` objects on one store, driven in a fixed order (one inside the
other's ``on_shard`` hook, or through a patched store function): no sleeps, no threads.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from qa.engine import run as engine_run
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.store import Store
from qa.store import results as store_results
from qa.store import runs as store_runs
from tests.helpers import make_refset


def _config(tmp_path: Path) -> RunConfig:
    """bicubic on 4 tiles in 2 shards of 2, psnr only."""
    refset = tmp_path / "set"
    if not refset.exists():
        make_refset(refset, n=4)
    return RunConfig(decoder="bicubic", reference_set=str(refset), metrics=["psnr"], seeds=[0], shard_size=2,
                     progress=False)


class Stop(Exception):
    """Raised from on_shard: the run stops after its first shard (as if killed)."""


def _stop(index: int) -> None:
    raise Stop(f"planted stop after shard {index}")


def _interrupted(store: Store, tmp_path: Path) -> str:
    """A run stopped after its first shard (status 'failed'): its id."""
    with pytest.raises(Stop):
        RunEngine(store, on_shard=_stop).start(_config(tmp_path))
    run = store_runs.latest_run(store)
    assert run is not None and run.status == "failed"
    return run.run_id


def _state(store: Store, run_id: str) -> tuple[object, ...]:
    """Everything a stray writer could change: status, finished_at, error, set results and shard writers."""
    return (store.query("select status, finished_at, error from runs where run_id = ?", [run_id]),
            store.query("select * from set_results where run_id = ? order by metric", [run_id]),
            store.query("select shard_index, worker, finished_at from shards where run_id = ? order by 1", [run_id]))


def _approve(store: Store, run_id: str) -> None:
    """An approving sign-off row of ``run_id`` (as `qa signoff --decision approve --override` stores one)."""
    with store.transaction() as con:
        con.execute("insert into signoffs values (1, ?, 'reviewer r', 'approve', 'partial', true, ?, '', 'h')",
                    [run_id, datetime(2026, 1, 2, 3, 4)])


@pytest.fixture
def no_sigterm_death() -> Iterator[None]:
    """SIGTERM raises a plain error unless qa handles it: without qa's handler the test fails, pytest lives."""

    def fallback(signum: int, _frame: object) -> None:
        raise RuntimeError("SIGTERM reached the default handler: qa did not handle it")

    previous = signal.signal(signal.SIGTERM, fallback)
    yield
    signal.signal(signal.SIGTERM, previous)


# -- H2: a resume of a run another process is writing -----------------------------------------------------------
def test_a_resumer_that_finds_the_run_finished_by_the_original_leaves_it_as_it_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "qa.duckdb")
    resumer = RunEngine(store)
    reopened = []

    def resume_now(index: int) -> None:  # a second `qa run --resume` starts after the original's first shard
        if index == 0:
            run = store_runs.latest_run(store)
            assert run is not None
            reopened.append(resumer.reopen_run(run.run_id, progress=False))

    run_id = RunEngine(store, on_shard=resume_now).start(_config(tmp_path))  # the original finishes first
    finished = _state(store, run_id)
    assert finished[0][0][0] == "finished"  # type: ignore[index]
    resumer.run_prepared(reopened[0])  # the resumer ends after it: it must not rewrite the finished run
    assert _state(store, run_id) == finished
    assert f"run {run_id} was finished by another process while this one ran; nothing was changed" in \
        capsys.readouterr().err


def test_ctrl_c_on_a_redundant_resumer_never_marks_a_finished_run_interrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "qa.duckdb")
    run_id = _interrupted(store, tmp_path)
    first, second = RunEngine(store), RunEngine(store)
    prepared = first.reopen_run(run_id, progress=False)  # resumed from 'failed': this process holds it
    second.resume(run_id, progress=False)  # a second resume (CI retry) finishes it meanwhile
    finished = _state(store, run_id)

    def ctrl_c(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(first, "finalize", ctrl_c)  # the user presses Ctrl-C on the first, now redundant, one
    with pytest.raises(KeyboardInterrupt):
        first.run_prepared(prepared)
    assert _state(store, run_id) == finished
    err = capsys.readouterr().err
    assert f"run {run_id} was finished by another process while this one ran; it was left as it is" in err
    assert f"run {run_id} interrupted;" not in err


def test_a_resumer_that_sees_another_process_commit_a_shard_stops_and_leaves_the_run_to_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "qa.duckdb")
    run_id = _interrupted(store, tmp_path)
    store_runs.set_running(store, run_id)  # the original process is alive, still writing shard 2
    resumer = RunEngine(store)
    real_commit = resumer.commit_shard

    def other_commits_first(rid: str, index: int, output: object, worker: str = "") -> bool:
        store_results.commit_shard(store, rid, index, [], [], 2, worker="other-host:4242")  # the original, first
        return real_commit(rid, index, output, worker)  # type: ignore[arg-type]

    monkeypatch.setattr(resumer, "commit_shard", other_commits_first)
    with pytest.raises(QAError, match=r"being written by another process too: shard 2 was committed by worker "
                                      r"other-host:4242 .*this resume stopped and left the run to that process"):
        resumer.resume(run_id, progress=False)
    status, error = store.query("select status, error from runs where run_id = ?", [run_id])[0]
    assert (status, str(error)) == ("running", "Stop: planted stop after shard 0")  # the original's, untouched
    assert store.query("select count(*) from set_results where run_id = ?", [run_id]) == [(0,)]


def test_the_process_that_created_the_run_goes_on_when_a_resumer_committed_a_shard_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "qa.duckdb")
    original = RunEngine(store)
    real_commit = original.commit_shard

    def resumer_commits_first(rid: str, index: int, output: object, worker: str = "") -> bool:
        if index == 1:
            store_results.commit_shard(store, rid, index, [], [], 2, worker="resumer:7")
        return real_commit(rid, index, output, worker)  # type: ignore[arg-type]

    monkeypatch.setattr(original, "commit_shard", resumer_commits_first)
    run_id = original.start(_config(tmp_path))
    assert store.query("select status from runs where run_id = ?", [run_id]) == [("finished",)]
    assert f"shard 2 of run {run_id} was committed by worker resumer:7" in capsys.readouterr().err


# -- H1 part 3: an approved run is never resumed ---------------------------------------------------------------
def test_resume_refuses_an_interrupted_run_that_is_approved_and_leaves_it_as_it_is(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    run_id = _interrupted(store, tmp_path)
    _approve(store, run_id)
    before = _state(store, run_id)
    with pytest.raises(QAError, match=rf"run {run_id} is approved \(sign-off seq 1, approved by reviewer r at "
                                      r"2026-01-02 03:04, status failed\).*left as it is\n  hint: start a new run"):
        RunEngine(store).resume(run_id, progress=False)
    assert _state(store, run_id) == before


def test_resume_refuses_a_run_approved_while_the_resume_loaded_its_decoder_and_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "qa.duckdb")
    run_id = _interrupted(store, tmp_path)
    real_load = engine_run.load_reference_set

    def approved_meanwhile(name: str) -> object:
        _approve(store, run_id)
        return real_load(name)

    monkeypatch.setattr(engine_run, "load_reference_set", approved_meanwhile)
    before = store.query("select status, error from runs where run_id = ?", [run_id])
    with pytest.raises(QAError, match=rf"run {run_id} is approved \(sign-off seq 1"):
        RunEngine(store).resume(run_id, progress=False)
    assert store.query("select status, error from runs where run_id = ?", [run_id]) == before
    assert store_results.done_shards(store, run_id) == {0}


# -- M1: every stop after the run row exists marks it and says how to finish it ---------------------------------
def _assert_interrupted_with_hint(store: Store, err: str) -> str:
    run = store_runs.latest_run(store)
    assert run is not None
    assert run.status == "interrupted", run.status
    assert f"qa: run {run.run_id} interrupted;" in err and f"`qa run --resume {run.run_id}`" in err
    return run.run_id


def test_ctrl_c_during_finalisation_marks_the_run_interrupted_and_says_how_to_finish_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "qa.duckdb")

    def ctrl_c(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store_results, "image_metric_rows", ctrl_c)  # the set results are being computed
    with pytest.raises(KeyboardInterrupt):
        RunEngine(store).start(_config(tmp_path))
    run_id = _assert_interrupted_with_hint(store, capsys.readouterr().err)
    assert store_results.done_shards(store, run_id) == {0, 1}


@pytest.mark.usefixtures("no_sigterm_death")
def test_sigterm_during_finalisation_marks_the_run_interrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "qa.duckdb")

    def sigterm(*_a: object, **_k: object) -> None:
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(store_results, "image_metric_rows", sigterm)
    with pytest.raises(KeyboardInterrupt):
        RunEngine(store).start(_config(tmp_path))
    _assert_interrupted_with_hint(store, capsys.readouterr().err)


@pytest.mark.usefixtures("no_sigterm_death")
@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_stop_right_after_the_run_row_is_stored_marks_it_interrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sig: str) -> None:
    store = Store(tmp_path / "qa.duckdb")
    real_insert = store_runs.insert_run

    def stored_then_stopped(*a: object, **k: object) -> None:
        real_insert(*a, **k)  # type: ignore[arg-type]
        signal.raise_signal(signal.SIGINT if sig == "INT" else signal.SIGTERM)

    monkeypatch.setattr(store_runs, "insert_run", stored_then_stopped)
    with pytest.raises(KeyboardInterrupt):
        RunEngine(store).start(_config(tmp_path))
    run_id = _assert_interrupted_with_hint(store, capsys.readouterr().err)
    assert store_results.done_shards(store, run_id) == set()
    monkeypatch.undo()
    RunEngine(store).resume(run_id, progress=False)  # and it finishes as said
    assert store.query("select status from runs where run_id = ?", [run_id]) == [("finished",)]


def test_a_stop_while_the_first_shard_is_set_up_marks_the_run_interrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "qa.duckdb")

    def ctrl_c(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine_run, "ShardRunner", ctrl_c)  # the decoder and metrics are being set up
    with pytest.raises(KeyboardInterrupt):
        RunEngine(store).start(_config(tmp_path))
    _assert_interrupted_with_hint(store, capsys.readouterr().err)


def test_a_stop_after_the_run_finished_leaves_it_finished_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "qa.duckdb")

    def ctrl_c(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine_run.store_pixels, "prune", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        RunEngine(store).start(_config(tmp_path))
    run = store_runs.latest_run(store)
    assert run is not None and run.status == "finished"
    err = capsys.readouterr().err
    assert f"qa: run {run.run_id} finished; stopped while removing older runs'" in err and "interrupted;" not in err
