"""Baseline files on disk: one Parquet file of an approved run's rows, and its byte-exact integrity check.

A baseline file holds rows of qa's own tables, one Parquet row each: ``tbl`` (the table), ``row`` (the row as
canonical JSON: floats exact, times ISO 8601) and ``png`` (an image's bytes, only for ``images`` rows). Its
footer's key-value metadata holds ``qa_baseline_format`` and ``qa_file_sha256``: the sha256 of the whole file
with that value's 64 characters written as ``0``, so **any changed byte** of the file is found before anything
in it is read (:func:`check_file_digest`). What the rows mean (signatures, evidence) is checked by
:mod:`qa.gate.baseline_file` on an in-memory DuckDB built from them (:func:`materialise`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from qa.errors import StoreError
from qa.store.db import Snapshot, Store
from qa.store.schema import MIGRATIONS

FILE_FORMAT = 1
FORMAT_KEY = "qa_baseline_format"
DIGEST_KEY = "qa_file_sha256"
_ZEROS = "0" * 64
#: tables a baseline file may hold (``meta``: one row about the export; ``image_digests``: images as hashes;
#: ``regions`` and ``pixels``: where the crops look and the full-resolution images' tiling; ``tile_digests``: the
#: tiles as hashes, the tiles themselves stay in the store)
TABLES = ("meta", "runs", "cases", "results", "set_results", "image_digests", "images", "regions", "pixels",
          "tile_digests", "gates", "signoffs", "signoff_proofs")
_EXTRA = ["create table meta (row varchar)",
          "create table image_digests (run_id varchar, case_id varchar, seed integer, kind varchar, sha256 varchar, "
          "primary key (run_id, case_id, seed, kind))",
          "create table tile_digests (image_sha256 varchar, tile_y integer, tile_x integer, sha256 varchar, "
          "primary key (image_sha256, tile_y, tile_x))"]


def _jsonable(x: Any) -> Any:
    return x.isoformat(timespec="microseconds") if isinstance(x, datetime) else x


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def export_rows(store: Store, run_id: str, gate_ids: list[str], with_images: bool) -> list[tuple[str, dict[str, Any], bytes | None]]:
    """(table, row, png) of everything a baseline file of ``run_id`` holds: the run, its reference manifest,
    results, set results, image hashes (and PNGs when ``with_images``), the gates ``gate_ids`` and the whole
    sign-off chain with its proofs."""
    out: list[tuple[str, dict[str, Any], bytes | None]] = []
    with store.snapshot() as snap:
        con = snap.con
        runs = _dicts(con, "select * from runs where run_id = ?", [run_id])
        out += [("runs", r, None) for r in runs]
        sha = str(runs[0]["reference_set_sha256"]) if runs else ""
        out += [("cases", r, None) for r in _dicts(con, "select * from cases where reference_set_sha256 = ?", [sha])]
        out += [("results", r, None) for r in _dicts(con, "select * from results where run_id = ?", [run_id])]
        out += [("set_results", r, None) for r in _dicts(con, "select * from set_results where run_id = ?", [run_id])]
        out += [("image_digests", r, None) for r in _dicts(
            con, "select run_id, case_id, seed, kind, sha256(png) as sha256 from images where run_id = ?", [run_id])]
        out += [("regions", r, None) for r in _dicts(con, "select * from regions where run_id = ?", [run_id])]
        out += [("pixels", r, None) for r in _dicts(con, "select * from pixels where run_id = ?", [run_id])]
        out += [("tile_digests", r, None) for r in _dicts(
            con, "select image_sha256, tile_y, tile_x, sha256(data) as sha256 from tiles where image_sha256 in "
            "(select image_sha256 from pixels where run_id = ?)", [run_id])]
        if with_images:
            for r in _dicts(con, "select * from images where run_id = ?", [run_id]):
                png = r.pop("png")
                out.append(("images", r, bytes(png) if png is not None else None))
        for gid in gate_ids:
            out += [("gates", r, None) for r in _dicts(con, "select * from gates where gate_id = ?", [gid])]
        out += [("signoffs", r, None) for r in _dicts(con, "select * from signoffs order by seq", [])]
        out += [("signoff_proofs", r, None) for r in _dicts(con, "select * from signoff_proofs order by seq", [])]
    return out


def write_file(path: Path, rows: list[tuple[str, dict[str, Any], bytes | None]]) -> str:
    """Write ``rows`` as a baseline file at ``path`` (atomically); returns the file's sha256 digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        con = duckdb.connect()
        con.execute("create table t (tbl varchar, row varchar, png blob)")
        con.executemany("insert into t values (?, ?, ?)",
                        [[t, json.dumps({k: _jsonable(v) for k, v in r.items()}, sort_keys=True, default=str), p]
                         for t, r, p in rows])
        Path(tmp).unlink()
        placeholder = secrets.token_hex(32)  # unique in the file; the digest covers the file with zeros there
        con.execute(f"copy t to '{_sql_path(tmp)}' (format parquet, kv_metadata "
                    f"{{{FORMAT_KEY}: '{FILE_FORMAT}', {DIGEST_KEY}: '{placeholder}'}})")
        con.close()
        data = Path(tmp).read_bytes()
        if data.count(placeholder.encode()) != 1:
            raise StoreError(f"cannot seal {path}: its digest placeholder is not unique", "export again")
        digest = hashlib.sha256(data.replace(placeholder.encode(), _ZEROS.encode())).hexdigest()
        Path(tmp).write_bytes(data.replace(placeholder.encode(), digest.encode()))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def _sql_path(p: str) -> str:
    if "'" in p:
        raise StoreError(f"path {p!r} contains a quote", "write the baseline file to a path without quotes")
    return p


def check_file_digest(path: Path) -> tuple[str, str]:
    """(sha256, problem): the file's recorded digest and why the bytes do not match it ('' when they do)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return "", f"cannot read baseline file {path}: {exc.strerror or exc}"
    try:
        con = duckdb.connect()
        meta = {bytes(k).decode(errors="replace"): bytes(v).decode(errors="replace") for _, k, v, *_ in con.execute(
            f"select * from parquet_kv_metadata('{_sql_path(str(path))}')").fetchall()}
        con.close()
    except duckdb.Error as exc:
        return "", f"baseline file {path} is not a readable Parquet file ({str(exc).splitlines()[0]})"
    recorded = meta.get(DIGEST_KEY, "")
    if meta.get(FORMAT_KEY) != str(FILE_FORMAT) or len(recorded) != 64:
        return "", (f"{path} is not a qa baseline file of format {FILE_FORMAT} (no {DIGEST_KEY} in its metadata): "
                    "write one with `qa baseline export`")
    if data.count(recorded.encode()) != 1:
        return recorded, f"baseline file {path} was changed after export: its recorded digest appears {data.count(recorded.encode())} times"
    actual = hashlib.sha256(data.replace(recorded.encode(), _ZEROS.encode())).hexdigest()
    if actual != recorded:
        return recorded, (f"baseline file {path} was changed after export: its bytes hash to {actual[:16]}, not the "
                          f"{recorded[:16]} it was written with")
    return recorded, ""


def read_rows(path: Path) -> list[tuple[str, str, bytes | None]]:
    """(table, row JSON, png) of every row of a baseline file (check its digest first)."""
    try:
        con = duckdb.connect()
        rows = con.execute(f"select tbl, row, png from read_parquet('{_sql_path(str(path))}')").fetchall()
        con.close()
    except duckdb.Error as exc:
        raise StoreError(f"cannot read baseline file {path}: {str(exc).splitlines()[0]}") from exc
    return [(str(t), str(r), None if p is None else bytes(p)) for t, r, p in rows]


def materialise(path: Path, rows: list[tuple[str, str, bytes | None]]) -> Snapshot:
    """An in-memory DuckDB with qa's schema holding ``rows`` (read through the store's readers like a store).
    Unknown tables or columns are refused (StoreError): nothing of the file reaches SQL but values."""
    con = duckdb.connect()
    for _, _, statements in MIGRATIONS:
        for sql in statements:
            con.execute(sql)
    for sql in _EXTRA:
        con.execute(sql)
    columns: dict[str, list[str]] = {}
    for t in TABLES:
        columns[t] = [str(r[0]) for r in con.execute(
            "select column_name from information_schema.columns where table_name = ? order by ordinal_position",
            [t]).fetchall()]
    for table, text, png in rows:
        if table not in TABLES:
            raise StoreError(f"baseline file {path} has rows of an unknown table {table!r}")
        try:
            row = json.loads(text) if table != "meta" else {"row": text}
        except ValueError as exc:
            raise StoreError(f"baseline file {path}: a {table} row is not JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise StoreError(f"baseline file {path}: a {table} row is not a JSON object")
        if table == "images":
            row["png"] = png
        unknown = set(row) - set(columns[table])
        if unknown:
            raise StoreError(f"baseline file {path}: {table} rows have unknown columns {sorted(unknown)}")
        names = [c for c in columns[table] if c in row]
        try:
            con.execute(f"insert into {table} ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
                        [row[c] for c in names])
        except duckdb.Error as exc:
            raise StoreError(f"baseline file {path}: a {table} row cannot be read back ({str(exc).splitlines()[0]})") from exc
    return Snapshot(con, path)


def meta_rows(db: Snapshot) -> list[str]:
    """The ``meta`` rows (JSON text) of a loaded baseline file."""
    return [str(r[0]) for r in db.query("select row from meta")]
