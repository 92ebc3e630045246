"""Report audit L4 (2026-12-07): `qa status` showed the newest 30 runs of a 43-run store and 10 of bicubic's 28,
with no word that more exist: a reviewer reading it took the list for every run."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

import qa.gate.status as status
from qa.cli.main import main
from tests.helpers import make_refset


def _qa(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(list(argv)) == 0
    return out.getvalue()


def test_status_says_how_many_runs_it_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_refset(tmp_path / "set", n=1)
    db = str(tmp_path / "qa.duckdb")
    ids = [_qa("run", "--decoder", "bicubic", "--reference-set", str(root), "--metrics", "psnr", "--db", db,
               "--no-progress").strip() for _ in range(3)]
    _qa("run", "--decoder", "identity", "--reference-set", str(root), "--metrics", "psnr", "--db", db, "--no-progress")
    full = _qa("status", "bicubic", "--db", db)
    assert "older run" not in full and all(i in full for i in ids)

    monkeypatch.setattr(status, "MAX_RUNS", 2)
    monkeypatch.setattr(status, "RUNS_LISTED", 3)
    text = _qa("status", "bicubic", "--db", db)
    assert ids[0] not in text.split("decoder bicubic:")[1]  # the oldest is cut from the decoder's list ...
    assert "... and 1 older run(s) not listed (the newest 2 are)" in text  # ... and that is said
    top = _qa("status", "--db", db)
    assert "... and 1 older run(s) not listed (the newest 3 are)" in top.split("\ndecoder ")[0]  # 4 runs, 3 shown
    assert "... and 1 older run(s) not listed" in _qa("status", "bicubic", "--db", db, "--format", "markdown")
    states = json.loads(_qa("status", "bicubic", "--db", db, "--format", "json"))
    assert states[0]["runs_total"] == 3 and len(states[0]["runs"]) == 2
