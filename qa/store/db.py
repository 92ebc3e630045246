"""Opening the DuckDB file safely: migrations, and waiting on another process's lock.

DuckDB lets one process write a file at a time. qa opens the file only for the duration of one unit of work
(a shard commit, a query) and retries with back-off while another process holds the lock, so several
``qa run`` processes can share one database file without losing rows.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from qa.errors import StoreError
from qa.store.schema import LATEST_VERSION, MIGRATIONS

DEFAULT_DB = Path("reports/qa.duckdb")
#: environment variable that overrides the default database path
DB_ENV = "QA_DB"


def default_db_path() -> Path:
    """The database path: $QA_DB if set, else reports/qa.duckdb."""
    return Path(os.environ.get(DB_ENV, str(DEFAULT_DB)))


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
        if read_only and not self.path.exists():
            raise StoreError(
                f"database {self.path} does not exist",
                "run `qa run --decoder NAME` or `qa demo` first, or pass --db PATH to an existing file",
            )
        if not read_only:
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise StoreError(f"cannot open {self.path}: {exc}", "close the other process using it") from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.6, 1.0)
            except duckdb.Error as exc:
                raise StoreError(f"cannot open {self.path}: {exc}", "is it a DuckDB file?") from exc
        if not self._migrated and not read_only:
            migrate(con)
            self._migrated = True
        return con

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held only for the ``with`` block (so other processes can take their turn)."""
        con = self._open(read_only)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN/COMMIT; rolled back if the block raises."""
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    def query(self, sql: str, params: list[object] | tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run a parameterised read query and return all rows."""
        with self.connect() as con:
            return con.execute(sql, list(params)).fetchall()

    def query_df(self, sql: str, params: list[object] | tuple[object, ...] = ()):  # noqa: ANN201
        """Run a parameterised read query and return a pandas DataFrame."""
        with self.connect() as con:
            return con.execute(sql, list(params)).df()


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations in order; returns the schema version afterwards."""
    con.execute("create table if not exists schema_version (version integer primary key, "
                "description varchar, applied_at timestamp)")
    rows = con.execute("select max(version) from schema_version").fetchall()
    current = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    if current > LATEST_VERSION:
        raise StoreError(
            f"database schema version {current} is newer than this qa ({LATEST_VERSION})",
            "upgrade qa, or use another --db",
        )
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
    return current
