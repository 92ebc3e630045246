"""`qa weights import` with an unusable weights folder or a write error mid-copy (audit F7): one `qa weights:
error: ...` message, exit 1 (as for a refused file), no traceback, and no `.part` file left behind."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import qa.weights as W

lpips = pytest.importorskip("lpips")
ALEX_HEADS = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"


@pytest.mark.parametrize(("where", "why"), [("file", "is a file, not a folder"),
                                            ("file/sub", "cannot be written (Not a directory)")])
def test_a_weights_folder_that_is_a_file_is_a_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                         where: str, why: str) -> None:
    (home / "file").write_bytes(b"not a folder")
    monkeypatch.setenv("QA_WEIGHTS_DIR", str(home / where))
    out, err = io.StringIO(), io.StringIO()
    assert W.cli_import(str(ALEX_HEADS), out=out, err=err) == 1
    msg = err.getvalue()
    assert msg.startswith(f"qa weights: error: weights folder {home / where} {why}; nothing imported")
    assert "QA_WEIGHTS_DIR" in msg and "Traceback" not in msg and not out.getvalue()
    assert (home / "file").read_bytes() == b"not a folder"


def test_a_write_error_mid_copy_is_reported_and_leaves_no_part_file(home: Path) -> None:
    """A file-size limit of 2 KiB (the file is 6 KiB): the write fails with EFBIG after the first 2 KiB."""
    assert ALEX_HEADS.stat().st_size > 4096
    folder = home / "weights"
    code = textwrap.dedent(f"""
        import resource, sys, torch  # torch imported before the limit (check_plain_state_dict loads the file)
        import qa.weights as W
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        sys.exit(W.cli_import({str(ALEX_HEADS)!r}))
    """)
    env = {**os.environ, "QA_WEIGHTS_DIR": str(folder)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("qa weights: error: copying ") and "File too large" in proc.stderr
    assert "nothing imported" in proc.stderr and "Traceback" not in proc.stderr
    assert folder.is_dir() and not list(folder.iterdir())  # neither alex.pth nor a .part file


def test_a_successful_import_leaves_only_the_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_WEIGHTS_DIR", str(home / "weights"))
    name, dest = W.import_file(ALEX_HEADS)
    assert name == "lpips-alex-v0.1" and dest.read_bytes() == ALEX_HEADS.read_bytes()
    assert [p.name for p in (home / "weights").iterdir()] == ["alex.pth"]
