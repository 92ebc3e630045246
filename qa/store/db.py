"""Opening the DuckDB file safely: migrations, and waiting on another process's lock.

DuckDB lets one process write a file at a time. qa opens the file only for the duration of one unit of work
(a shard commit, a query) and retries with back-off while another process holds the lock, so several
``qa run`` processes can share one database file without losing rows.
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import duckdb

from qa.errors import StoreError
from qa.settings import get_settings
from qa.store.anchor import write_genesis_anchor
from qa.store.schema import LATEST_VERSION, MIGRATIONS

if TYPE_CHECKING:  # only for the annotation: importing pyarrow is not needed to pass a table through
    import pyarrow as pa


#: seconds of waiting for another process's lock after which qa says on stderr that it is waiting (once a wait)
LOCK_NOTICE_AFTER = 2.0


class DatabaseError(StoreError, duckdb.Error):
    """A DuckDB error on the store, translated into one line and a hint (:func:`translate_error`); still a
    ``duckdb.Error`` for callers that catch those."""


def default_db_path() -> Path:
    """The database path: $QA_DB if set, else reports/qa.duckdb (:class:`qa.settings.Settings`)."""
    return get_settings().db


class Store:
    """A DuckDB file. Use :meth:`connect` for reads and :meth:`transaction` for atomic writes.

    ``lock_timeout``: seconds to keep retrying while another process holds the file.
    """

    def __init__(self, path: str | Path | None = None, lock_timeout: float = 600.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.lock_timeout = lock_timeout
        self._migrated = False

    def exists(self) -> bool:
        """Whether the database file exists."""
        return self.path.exists()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        if self.path.is_dir():
            raise StoreError(f"database path {self.path} is a folder, not a DuckDB file",
                             "pass --db PATH/qa.duckdb (a file inside it), or set $QA_DB to a file")
        if read_only and not self.path.exists():
            raise StoreError(
                f"database {self.path} does not exist",
                "run `qa run --decoder NAME` or `qa demo` first, or pass --db PATH to an existing file",
            )
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of {self.path}: {exc.strerror or exc}",
                                 "pass --db PATH in a writable folder") from exc
            _check_writable(self.path)
        start = time.monotonic()
        deadline = start + self.lock_timeout
        delay = 0.05
        said = False
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise translate_error(self.path, exc, "open") from exc
                if time.monotonic() > deadline:
                    raise StoreError(f"cannot open {self.path}: another process holds it ({_first_line(exc)})",
                                     "wait for it or close the other process using it") from exc
                if not said and time.monotonic() - start >= LOCK_NOTICE_AFTER:
                    said = True
                    print(lock_wait_notice(self.path, exc, self.lock_timeout), file=sys.stderr, flush=True)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.6, 1.0)
            except duckdb.Error as exc:
                raise translate_error(self.path, exc, "open") from exc
        if read_only:
            try:
                check_version(con)
            except BaseException:
                con.close()
                raise
        if not self._migrated and not read_only:
            try:
                before = migrate(con)
            except duckdb.Error as exc:
                con.close()
                raise translate_error(self.path, exc, "upgrade") from exc
            except BaseException:
                con.close()
                raise
            self._migrated = True
            if before < 2:
                try:
                    write_genesis_anchor(self.path, con)
                except OSError as exc:
                    con.close()
                    raise StoreError(f"cannot write the sign-off anchor beside {self.path}: {exc.strerror or exc}",
                                     "pass --db PATH in a writable folder") from exc
        return con

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held only for the ``with`` block (so other processes can take their turn).

        A DuckDB error inside the block becomes a :class:`StoreError` with one line and a hint (damaged file,
        full disk, missing table): see :func:`translate_error`."""
        con = self._open(read_only)
        try:
            yield con
        except DatabaseError:
            raise
        except duckdb.Error as exc:
            raise translate_error(self.path, exc) from exc
        finally:
            con.close()

    @contextmanager
    def transaction(self, after_commit: Callable[[], None] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN/COMMIT; rolled back if the block raises (the original error is kept).

        ``after_commit``: called after the commit while the connection (and so the file's lock) is still held."""
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                yield con
            except BaseException:
                with suppress(duckdb.Error):  # an interrupted or failed transaction may be aborted already
                    con.execute("rollback")
                raise
            con.execute("commit")
            if after_commit is not None:
                after_commit()

    def query(self, sql: str, params: list[object] | tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run a parameterised read query and return all rows."""
        with self.connect() as con:
            return con.execute(sql, list(params)).fetchall()

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """One read-only connection for a series of reads (a report): nothing is migrated or written."""
        with self.connect(read_only=True) as con:
            yield Snapshot(con, self.path)


class Reader(Protocol):
    """What the read functions of :mod:`qa.store` query: a :class:`Store` or a :class:`Snapshot`."""

    path: Path

    def query(self, sql: str, params: list[object] | tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """All rows of a parameterised read query."""
        ...


class Snapshot:
    """Reads through one open read-only connection. A file of an older schema is read as it is: columns added
    by later migrations read as null (``missing``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con = con
        self.path = path
        rows = con.execute("select column_name from information_schema.columns where table_name = 'runs'").fetchall()
        self.missing = {"scale"} - {str(r[0]) for r in rows}

    def query(self, sql: str, params: list[object] | tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """All rows of a parameterised read query."""
        return self.con.execute(sql, list(params)).fetchall()


def _check_writable(path: Path) -> None:
    """StoreError naming a read-only database file or folder (never "damaged"): qa writes the file, its WAL
    and the sign-off anchor beside it."""
    if path.exists() and not os.access(path, os.W_OK):
        raise StoreError(f"database {path} is read-only (this user may not write it); it is not damaged",
                         "make it writable (`chmod u+w`), or copy it somewhere writable and pass --db COPY")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StoreError(f"the folder {path.parent} of database {path} is read-only: qa writes the database, its "
                         "write-ahead log and the sign-off anchor there; the file itself is not damaged",
                         "make the folder writable, or copy the database (and its .signoff-head) to a writable "
                         "folder and pass --db COPY")


def check_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of an open database (0 when it has none yet); StoreError when it is newer than qa's."""
    has = con.execute("select count(*) from information_schema.tables where table_name = 'schema_version'").fetchone()
    if not has or not has[0]:
        return 0
    rows = con.execute("select max(version) from schema_version").fetchall()
    current = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    if current > LATEST_VERSION:
        raise StoreError(f"database schema version {current} is newer than this qa ({LATEST_VERSION})",
                         "upgrade qa, or use another --db")
    return current


def insert_arrow(con: duckdb.DuckDBPyConnection, statement: str, table: pa.Table) -> None:
    """``<statement> select * from`` an Arrow table, registered for the statement only under a fixed name (no SQL
    is built from data). One statement for all rows: DuckDB's executemany runs one insert per row (~1 ms each)."""
    con.register("qa_arrow_rows", table)
    try:
        con.execute(f"{statement} select * from qa_arrow_rows")
    finally:
        con.unregister("qa_arrow_rows")


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations in order; returns the schema version found before (0 for a new file)."""
    con.execute("create table if not exists schema_version (version integer primary key, "
                "description varchar, applied_at timestamp)")
    current = check_version(con)
    before = current
    for version, description, statements in MIGRATIONS:
        if version <= current:
            continue
        con.execute("begin transaction")
        try:
            for sql in statements:
                con.execute(sql)
            con.execute("insert into schema_version values (?, ?, now())", [version, description])
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
        current = version
    return before


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def lock_wait_notice(path: Path, exc: BaseException, timeout: float) -> str:
    """The line said while qa waits for another process's lock on ``path``: who holds it (the program and PID
    DuckDB names, when it does), that qa waits, for how long at most, and how to stop waiting."""
    held = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    who = f"process {held.group(2)} ({held.group(1)})" if held else "another process"
    return (f"qa: the database {path} is held by {who}: waiting for it to let go (up to {timeout:.0f} s in all, "
            "then this command fails); to go on sooner, close that process (a notebook, the DuckDB CLI, another qa)")


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "could not set lock" in text or "conflicting lock" in text


_FULL = ("no space left", "file too large", "disk quota", "out of disk", "enospc", "efbig")


def translate_error(path: Path, exc: duckdb.Error, doing: str = "use") -> DatabaseError:
    """One clear :class:`StoreError` for a DuckDB error on ``path``: full disk, damaged file, missing table,
    interrupted transaction, or (anything else) the error's first line."""
    text = _first_line(exc)
    low = str(exc).lower()
    if "permission denied" in low or "read-only file system" in low or "operation not permitted" in low:
        return DatabaseError(f"cannot {doing} {path}: permission denied ({text}); the file is not damaged",
                             "make the database file and its folder writable, or pass --db PATH to a writable copy")
    if any(k in low for k in _FULL):
        return DatabaseError(f"cannot write {path}: no space left to write it ({text})",
                          "free space (or pass --db PATH on another disk); nothing of the failed step was "
                          "committed, and an interrupted run resumes with `qa run --resume RUN_ID`")
    if isinstance(exc, duckdb.IOException | duckdb.SerializationException | duckdb.InternalException) \
            or "corrupt" in low or "not a valid duckdb" in low:
        return DatabaseError(f"cannot {doing} {path}: the file is damaged or not a DuckDB database ({text})",
                          "restore it from a backup, or pass --db PATH to another file (a new one is created)")
    if isinstance(exc, duckdb.CatalogException):
        return DatabaseError(f"database {path} is missing part of qa's schema ({text})",
                          "the file was altered outside qa: restore it from a backup, or pass --db PATH to a new file")
    if isinstance(exc, duckdb.TransactionException | duckdb.InterruptException):
        return DatabaseError(f"the transaction on {path} was interrupted and rolled back ({text})",
                          "run the command again; an interrupted run resumes with `qa run --resume RUN_ID`")
    return DatabaseError(f"database error on {path}: {type(exc).__name__}: {text}",
                      "if this persists, the file may be damaged: restore it from a backup or pass another --db")
