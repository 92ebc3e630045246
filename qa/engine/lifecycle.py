"""A run's status as the process writing it may change it, and the one path by which a run that stops early is
recorded.

Every transition is compare-and-set (:mod:`qa.store.runs`, :func:`qa.store.results.finish_run`): a process
finishes a run, or marks it ``failed``/``interrupted``, only while the run is still ``running`` and not approved;
a resume claims only a run that is neither finished nor approved. There is no lock and no owner column, so a
SIGKILL never leaves a run that cannot be resumed; instead a resume that sees another process commit a shard it
was about to commit stops and leaves the run to that process (:meth:`RunLifecycle.other_writer`).

:meth:`RunLifecycle.guard` wraps a whole ``qa run`` from before the run row is stored to after its set results
are: Ctrl-C, SIGTERM or an error anywhere in it (decoder loading, the shards, finalisation) marks the run
``interrupted`` or ``failed`` and prints its id and how to finish it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from qa.errors import QAError, StoreError
from qa.store import Store
from qa.store import results as store_results
from qa.store import runs as store_runs
from qa.store.records import SetResult
from qa.store.runs import RunState

__all__ = ["RunLeftAlone", "RunLifecycle", "raise_with_run_id", "sigterm_interrupts"]


class RunLeftAlone(QAError):
    """The run is not this process's to change (finished, stopped or approved elsewhere, or being written by
    another process): nothing more of it was touched, and it is not marked stopped."""


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, `timeout`, a container stopped) raises KeyboardInterrupt while a run scores, so
    the run is marked interrupted and says how to finish it, as on Ctrl-C; without this Python dies at once and the
    run stays 'running' for ever. Only in the main thread (elsewhere signals cannot be handled); restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def raise_with_run_id(run_id: str, exc: BaseException) -> None:
    """Re-raise a storage error (full disk, damaged file) naming the run, with its own hint (what to fix) and how to
    finish the run after; else return."""
    if isinstance(exc, StoreError) and not isinstance(exc, RunLeftAlone):
        message = str(exc).split("\n  hint: ")[0]
        fix = (exc.hint or "fix that (free space, or restore the file from a backup)").rstrip(". ")
        raise StoreError(f"run {run_id} stopped: {message}",
                         f"{fix}; the shards committed so far are kept: finish the run with `qa run --resume {run_id}`"
                         ) from exc


def _resume_hint(run_id: str) -> str:
    return f"the shards committed so far are kept: finish it with `qa run --resume {run_id}`"


def approved_refusal(run_id: str, state: RunState, doing: str) -> RunLeftAlone:
    """The refusal to change an approved run: the approval signs its evidence (results, set results, status)."""
    return RunLeftAlone(f"run {run_id} is approved ({state.approval}, status {state.status}): the approval signs its "
                        f"evidence as it is, and {doing} would change it; it was left as it is",
                        "start a new run with the same inputs (`qa run --decoder NAME ...`) and gate that one; "
                        "`qa signoff verify` checks the approval")


def resume_refusal(run_id: str, store: Store, state: RunState) -> RunLeftAlone | None:
    """Why ``run_id`` cannot be resumed from ``state`` (None when it can)."""
    if not state.status:
        return RunLeftAlone(f"no run {run_id!r} in {store.path}", "list runs with `qa status` or check --db")
    if state.approval:
        return approved_refusal(run_id, state, "resuming it")
    if state.status == "finished":  # redoing its set results would change its evidence, breaking a sign-off
        return RunLeftAlone(f"run {run_id} finished already: there is nothing to resume, and it was left as it is",
                            "a plain `qa run` with the same inputs starts a new run (it reuses none; only `pytest suites/ "
                            "--decoder=NAME` reuses a finished run with the same identity and no failed case); "
                            "`qa status` lists runs (resume one that is interrupted, failed or still marked running)")
    return None


class RunLifecycle:
    """The status changes one :class:`~qa.engine.run.RunEngine` makes to the runs it writes.

    ``live``: the run this process is writing now (set just before its row is stored or claimed, so an
    interruption at any later point marks it; marking a run that was never stored changes nothing)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.live: str | None = None
        self.finished: set[str] = set()  # finished by this process: never marked stopped afterwards
        self.shared: set[str] = set()  # resumed while marked running: maybe another process's, never marked here
        self._guarding = False
        self._foreign_said: set[str] = set()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """The one path by which a run of this process that stops early is recorded: SIGTERM is an interruption
        inside it, and any exception (KeyboardInterrupt included) marks the ``live`` run stopped, prints its id
        and the resume hint, and is re-raised (a storage error re-raised naming the run). Nested guards are one."""
        if self._guarding:
            yield
            return
        self._guarding, self.live = True, None
        try:
            with sigterm_interrupts():
                yield
        except BaseException as exc:
            run_id, self.live = self.live, None
            if run_id is not None and self.mark_stopped(run_id, exc):
                raise_with_run_id(run_id, exc)
            raise
        finally:
            self._guarding = False

    def mark_stopped(self, run_id: str, exc: BaseException) -> bool:
        """Record that the run stopped ('interrupted' on Ctrl-C or SIGTERM, else 'failed') with the error's text, if
        it is still this process's to change, and say so on stderr. Returns whether the run is there to resume.

        Best effort: when the store itself is what failed (full disk, damaged file), nothing more can be written
        and the original error is what the caller re-raises."""
        if isinstance(exc, RunLeftAlone) or run_id in self.finished:
            return False  # its message says what happened; a run finished here is finished
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]
        try:
            if run_id in self.shared:  # another process may still be writing it: marking it would stop that one
                state = store_runs.state_of(self.store, run_id)
            else:
                state = store_runs.stop_running(self.store, run_id, status, text)
        except QAError as second:
            print(f"qa: could not mark run {run_id} {status}: {str(second).splitlines()[0]}", file=sys.stderr)
            return True
        if state.held and run_id in self.shared:
            print(f"qa: run {run_id} stopped here ({status}); it was marked running when this resume began, so it is "
                  "left running: if no other process is writing it, finish it with "
                  f"`qa run --resume {run_id}`", file=sys.stderr)
            return True
        if state.held:
            print(f"qa: run {run_id} {status}; {_resume_hint(run_id)}", file=sys.stderr)
        elif not state.status:
            return False  # stopped before its row was stored: there is nothing to resume
        elif state.approval:
            print(f"qa: run {run_id} stopped ({status}); it is approved ({state.approval}), so its status was left "
                  f"{state.status}: start a new run to replace it", file=sys.stderr)
            return False
        elif state.status == "finished":
            print(f"qa: run {run_id} was finished by another process while this one ran; it was left as it is "
                  "(nothing to resume)", file=sys.stderr)
            return False
        else:
            print(f"qa: run {run_id} stopped; it is marked {state.status} already ({state.error or 'no reason'}); "
                  f"{_resume_hint(run_id)}", file=sys.stderr)
        return True

    def claim(self, run_id: str) -> None:
        """Mark ``run_id`` running again to resume it; raises RunLeftAlone when it is gone, finished or approved
        (checked and changed in one transaction, so a run finished or approved meanwhile is never reopened)."""
        self.live = run_id
        state = store_runs.claim_for_resume(self.store, run_id)
        refusal = resume_refusal(run_id, self.store, state)
        if refusal is not None:
            self.live = None
            raise refusal
        if state.status == "running":
            self.shared.add(run_id)
            print(f"qa: run {run_id} is still marked running: another `qa run` may be writing it, or one was killed. "
                  "This resume goes on; if it sees another process commit a shard, it stops and leaves the run to "
                  "that process", file=sys.stderr, flush=True)

    def other_writer(self, run_id: str, index: int, resumed: bool) -> None:
        """Shard ``index`` was committed by another process after this one began (commit_shard found it there).

        A resume stops (RunLeftAlone) and leaves the run to that process, which started it or resumed it first; the
        process that created the run goes on (its rows for that shard are the other's), so one of two writers
        always goes on. Nothing of the run is changed here."""
        who = store_results.shard_writer(self.store, run_id, index) or "another process"
        if resumed:
            self.live = None
            raise RunLeftAlone(f"run {run_id} is being written by another process too: shard {index + 1} was "
                               f"committed by {who}, after this resume began; this resume stopped and left the run "
                               "to that process (nothing of it was changed here)",
                               "wait for that process (`qa status` shows the run); if it was killed, finish the run "
                               f"with `qa run --resume {run_id}`")
        if run_id not in self._foreign_said:
            self._foreign_said.add(run_id)
            print(f"qa: shard {index + 1} of run {run_id} was committed by {who} first (a `qa run --resume` of this "
                  "run is running): its rows are kept as that process wrote them", file=sys.stderr)

    def finish(self, run_id: str, set_rows: list[SetResult]) -> bool:
        """Store the set results and mark the run finished, if it is still this process's (compare-and-set).
        Returns True when finished here; False when another process finished it first (said on stderr, nothing
        changed). Raises RunLeftAlone when it was stopped elsewhere or approved meanwhile."""
        state = store_results.finish_run(self.store, run_id, set_rows)
        if state.held:
            self.finished.add(run_id)
            self.live = None
            return True
        self.live = None
        if state.approval:
            raise approved_refusal(run_id, state, "finishing it")
        if state.status == "finished":
            print(f"qa: run {run_id} was finished by another process while this one ran; nothing was changed "
                  "(its set results are that process's)", file=sys.stderr)
            return False
        if not state.status:
            raise RunLeftAlone(f"run {run_id} is no longer in {self.store.path}; nothing was finished")
        raise RunLeftAlone(f"run {run_id} was marked {state.status} by another process while this one ran "
                           f"({state.error or 'no reason'}); it was not finished", _resume_hint(run_id))
