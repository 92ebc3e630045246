"""The ``regions``, ``pixels`` and ``tiles`` tables: full-resolution images of a run, and where to look in them.

A run keeps, per case (its first seed), the reference, the output and the map its strongest regions were found
in, at full resolution, as lossless tiles (``tiles``, keyed by the hash of the image's pixels, so the reference
that every run of a reference set stores, or an identical output of two runs, is stored once), and the strongest
regions of that map with the box shown around each (``regions``). The report cuts crops of any run at any run's
regions from the tiles: candidate and approved show the same pixels. Written inside the shard's transaction
(:func:`insert`); queries are parameterised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb
import pyarrow as pa

from qa.store.db import Reader, Store, insert_arrow
from qa.store.records import RegionRow, TiledImage
from qa.store.runs import marks

#: a stored map (kind ``map:<metric>``) holds value v as the 16-bit integer round(clip(v, 0, 1) x MAP_SCALE)
MAP_SCALE = 65535


def insert(con: duckdb.DuckDBPyConnection, run_id: str, regions: Sequence[RegionRow],
           images: Sequence[TiledImage]) -> None:
    """Write a shard's regions and tiled images with ``con`` (the shard's open transaction). Tiles of an image
    already stored (same pixel hash) are not written again."""
    if regions:
        cols = ("case_id", "seed", "map_kind", "rank", "x", "y", "side", "score", "crop_x", "crop_y", "crop_w",
                "crop_h")
        data: dict[str, pa.Array] = {"run_id": pa.array([run_id] * len(regions), pa.string())}
        for c in cols:
            kind = pa.string() if c in ("case_id", "map_kind") else pa.float64() if c == "score" else pa.int32()
            data[c] = pa.array([getattr(r, c) for r in regions], kind)
        insert_arrow(con, "insert or replace into regions", pa.table(data))
    if not images:
        return
    insert_arrow(con, "insert or replace into pixels", pa.table({
        "run_id": pa.array([run_id] * len(images), pa.string()),
        "case_id": pa.array([i.case_id for i in images], pa.string()),
        "seed": pa.array([i.seed for i in images], pa.int32()),
        "kind": pa.array([i.kind for i in images], pa.string()),
        "width": pa.array([i.width for i in images], pa.int32()),
        "height": pa.array([i.height for i in images], pa.int32()),
        "tile_side": pa.array([i.tile_side for i in images], pa.int32()),
        "image_sha256": pa.array([i.image_sha256 for i in images], pa.string()),
    }))
    shas = sorted({i.image_sha256 for i in images if i.tiles or i.encode})
    stored = {str(r[0]) for r in con.execute(
        f"select distinct image_sha256 from tiles where image_sha256 in {marks(shas)}", shas).fetchall()} if shas else set()
    new: dict[tuple[str, int, int], bytes] = {}
    for img in images:
        if img.image_sha256 not in stored:  # named by its hash but deleted since: encoded now (``encode``)
            tiles = (img.tiles if img.tiles or img.encode is None else img.encode()) or {}
            for (ty, tx), blob in tiles.items():
                new.setdefault((img.image_sha256, ty, tx), blob)
            stored.add(img.image_sha256)
    if new:
        insert_arrow(con, "insert or ignore into tiles", pa.table({
            "image_sha256": pa.array([k[0] for k in new], pa.string()),
            "tile_y": pa.array([k[1] for k in new], pa.int32()),
            "tile_x": pa.array([k[2] for k in new], pa.int32()),
            "data": pa.array(list(new.values()), pa.binary()),
        }))


def prune(store: Store, keep_latest: int) -> int:
    """Delete the tiles that no kept run refers to; returns how many images lost their tiles. Kept: the
    ``keep_latest`` newest finished runs of each decoder and reference set, every run whose latest sign-off
    approves it, and every run not finished (it may resume). The ``pixels`` and ``regions`` rows stay (a
    report says the pixels were not kept); thumbnails are not touched."""
    kept = ("select run_id from (select run_id, row_number() over (partition by decoder, reference_set_sha256 "
            "order by started_at desc, run_id desc) as k from runs where status = 'finished') where k <= ? "
            "union select run_id from (select run_id, decision, row_number() over (partition by run_id order by "
            "seq desc) as k from signoffs) where k = 1 and decision = 'approve' "
            "union select run_id from runs where status is distinct from 'finished'")
    with store.transaction() as con:
        doomed = [str(r[0]) for r in con.execute(
            f"select distinct image_sha256 from tiles where image_sha256 not in (select image_sha256 from pixels "
            f"where run_id in ({kept}))", [keep_latest]).fetchall()]
        for start in range(0, len(doomed), 500):
            chunk = doomed[start:start + 500]
            con.execute(f"delete from tiles where image_sha256 in {marks(chunk)}", chunk)
    return len(doomed)


def has_pixels(db: Reader) -> bool:
    """Whether the file has the tables of this module (a file of an older schema, read as it is, has not)."""
    return bool(db.query("select 1 from information_schema.tables where table_name = 'regions'"))


def tiled_references(db: Reader, case_ids: Sequence[str]) -> dict[str, set[str]]:
    """Case id -> the pixel hashes of the references any run stored for it whose tiles are still stored (a run
    whose reference has one of them need not encode its tiles again)."""
    if not case_ids or not has_pixels(db):
        return {}
    ids = sorted(set(case_ids))
    out: dict[str, set[str]] = {}
    for r in db.query(
            "select distinct p.case_id, p.image_sha256 from pixels p where p.kind = 'reference' "
            f"and p.case_id in {marks(ids)} and p.image_sha256 in (select image_sha256 from tiles)", tuple(ids)):
        out.setdefault(str(r[0]), set()).add(str(r[1]))
    return out


def regions_of(db: Reader, run_ids: Sequence[str]) -> dict[str, list[RegionRow]]:
    """run id -> its region rows, ordered by case, seed, map kind and rank."""
    out: dict[str, list[RegionRow]] = {}
    if not run_ids or not has_pixels(db):
        return out
    for r in db.query(
            "select run_id, case_id, seed, map_kind, rank, x, y, side, score, crop_x, crop_y, crop_w, crop_h "
            f"from regions where run_id in {marks(list(run_ids))} order by run_id, case_id, seed, map_kind, rank",
            list(run_ids)):
        ints = [int(str(v)) for v in (r[2], *r[4:8], *r[9:13])]
        out.setdefault(str(r[0]), []).append(RegionRow(
            str(r[1]), ints[0], str(r[3]), ints[1], ints[2], ints[3], ints[4], float(str(r[8])), *ints[5:9]))
    return out


def images_of(db: Reader, run_ids: Sequence[str]) -> dict[tuple[str, str, str], TiledImage]:
    """(run, case, kind) -> the tiled image stored (its first seed's when there are several), tiles not read."""
    out: dict[tuple[str, str, str], TiledImage] = {}
    if not run_ids or not has_pixels(db):
        return out
    for r in db.query(
            "select run_id, case_id, seed, kind, width, height, tile_side, image_sha256 from pixels "
            f"where run_id in {marks(list(run_ids))} order by run_id, case_id, kind, seed", list(run_ids)):
        key = (str(r[0]), str(r[1]), str(r[3]))
        if key not in out:
            out[key] = TiledImage(str(r[1]), int(str(r[2])), str(r[3]), int(str(r[4])), int(str(r[5])),
                                  int(str(r[6])), str(r[7]))
    return out


def tiles(db: Reader, wanted: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int, int], bytes]:
    """(image sha256, tile row, tile column) -> encoded tile, for those of ``wanted`` that are stored."""
    keys = sorted(set(wanted))
    out: dict[tuple[str, int, int], bytes] = {}
    for start in range(0, len(keys), 500):  # bounded statements
        chunk = keys[start:start + 500]
        where = " or ".join(["(image_sha256 = ? and tile_y = ? and tile_x = ?)"] * len(chunk))
        params: list[object] = [v for k in chunk for v in k]
        for sha, ty, tx, data in db.query(f"select image_sha256, tile_y, tile_x, data from tiles where {where}", params):
            out[(str(sha), int(str(ty)), int(str(tx)))] = bytes(data)  # type: ignore[call-overload]
    return out


def stored_bytes(db: Reader, run_id: str) -> dict[str, int]:
    """Bytes the run's tiled images take, per kind (an image shared with other runs counted in full), and
    ``regions`` -> the number of region rows."""
    out = {str(k): int(str(n)) for k, n in db.query(
        "select p.kind, sum(octet_length(t.data)) from pixels p join tiles t using (image_sha256) "
        "where p.run_id = ? group by p.kind order by 1", [run_id])}
    out["regions"] = int(str(db.query("select count(*) from regions where run_id = ?", [run_id])[0][0]))
    return out
