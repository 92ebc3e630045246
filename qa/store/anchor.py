"""The sign-off anchor: the head of the sign-off chain, kept in a file beside the database.

``<db>.signoff-head`` holds JSON ``{"format": 2, "head": HEAD, "pending": HEAD | null}`` where HEAD is
``{"seq", "hash", "signer", "signature"}``: the last committed sign-off and, while one is being written, the
one about to commit (written before the commit, cleared after it, all under the database's lock). The file
is created with the database (seq 0, the empty chain), so a missing anchor is always a finding. Heads after
seq 0 are signed by the reviewer who wrote them (see :mod:`qa.gate.signoff`). Writes are atomic (temporary
file, fsync, rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb

ANCHOR_SUFFIX = ".signoff-head"
GENESIS: dict[str, Any] = {"seq": 0, "hash": "", "signer": "", "signature": ""}


def anchor_path(db_path: Path) -> Path:
    """``<db>.signoff-head``."""
    return db_path.with_name(db_path.name + ANCHOR_SUFFIX)


def write_anchor(db_path: Path, head: dict[str, Any], pending: dict[str, Any] | None = None) -> None:
    """Atomically replace the anchor file of ``db_path``."""
    path = anchor_path(db_path)
    data = json.dumps({"format": 2, "head": head, "pending": pending}, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # readable like the database beside it (mkstemp makes it private)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def read_anchor(db_path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
    """(head, pending, problem): the anchor's content, or a problem text ('' when readable).

    A legacy anchor (``SEQ HASH`` from an older qa) reads as an unsigned head."""
    path = anchor_path(db_path)
    if not path.exists():
        return None, None, f"sign-off anchor {path} is missing (it is created with the database)"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, f"sign-off anchor {path} is unreadable ({exc})"
    parts = text.split()
    if len(parts) == 2 and parts[0].isdigit():
        return {"seq": int(parts[0]), "hash": parts[1], "signer": "", "signature": ""}, None, ""
    try:
        data = json.loads(text)
        head, pending = data["head"], data.get("pending")
        for h in [head] + ([pending] if pending else []):
            if not isinstance(h, dict) or not isinstance(h.get("seq"), int) or not isinstance(h.get("hash"), str):
                raise ValueError("bad head")
    except (ValueError, KeyError, TypeError):
        return None, None, f"sign-off anchor {path} is unreadable (not a qa anchor)"
    return head, pending, ""


def write_genesis_anchor(db_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Create the anchor of an empty chain when a database gets its sign-off tables (new or upgraded file)."""
    if anchor_path(db_path).exists():
        return
    if con.execute("select count(*) from signoffs").fetchone() != (0,):
        return  # an older qa's rows without an anchor: verify reports it, nothing is invented here
    write_anchor(db_path, dict(GENESIS))
