"""Resume audit M4: `qa run` and `qa status` waited up to 600 s in silence while another process (a notebook, the
DuckDB CLI) held the database: a lock wait looked like a hang. After a short wait qa says once, on stderr, who holds
the file, that it waits and for how long at most, then goes on waiting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qa.store import Store
from qa.store import db as store_db

HOLDER = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(2.5)"


def test_a_wait_for_another_process_lock_is_said_once_then_the_wait_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "qa.duckdb"
    assert Store(db).query("select 1") == [(1,)]  # the file exists, migrated
    monkeypatch.setattr(store_db, "LOCK_NOTICE_AFTER", 0.3, raising=False)  # absent before the fix
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert Store(db, lock_timeout=60).query("select 2") == [(2,)]  # waited for the holder, then went on
    finally:
        holder.wait(timeout=30)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"the database {db} is held by process {holder.pid} (" in lines[0]
    assert "waiting for it to let go (up to 60 s in all, then this command fails)" in lines[0]
    assert "close that process" in lines[0]


def test_no_notice_without_a_wait(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert Store(tmp_path / "qa.duckdb").query("select 1") == [(1,)]
    assert capsys.readouterr().err == ""
