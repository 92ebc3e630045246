"""What an approval's evidence digest covers, read from the store (or from a loaded baseline file).

The digest itself (canonical order, hashing) is :mod:`qa.gate.evidence`'s; these are its reads, in a fixed
column order that never follows later migrations (a column added later would change old digests).
"""

from __future__ import annotations

from typing import Any

from qa.store.db import Reader

#: the run columns an evidence digest covers (format 1), in this order
RUN_FIELDS = ("run_id", "decoder", "family", "backend", "track", "weights_sha256", "encoder_sha256", "reference_set",
              "reference_set_sha256", "seeds", "qa_version", "git_commit", "config_json", "identity_sha256",
              "status", "n_cases", "scale")


def _columns(db: Reader, table: str) -> set[str]:
    return {str(r[0]) for r in db.query(
        "select column_name from information_schema.columns where table_name = ?", [table])}


def run_fields(db: Reader, run_id: str) -> dict[str, Any] | None:
    """The :data:`RUN_FIELDS` of run ``run_id`` (``scale`` None on a file older than it), or None."""
    have = _columns(db, "runs")
    cols = ", ".join(c if c in have else f"null as {c}" for c in RUN_FIELDS)
    rows = db.query(f"select {cols} from runs where run_id = ?", [run_id])
    return dict(zip(RUN_FIELDS, rows[0], strict=True)) if rows else None


def reference_rows(db: Reader, reference_set_sha256: str) -> list[tuple[Any, ...]]:
    """(case_id, image_id, file, image_sha256, caption) of the reference set's manifest, by case id."""
    return db.query("select case_id, image_id, file, image_sha256, caption from cases where reference_set_sha256 = ? "
                    "order by case_id", [reference_set_sha256])


def result_rows(db: Reader, run_id: str) -> list[tuple[Any, ...]]:
    """(case_id, seed, metric, metric_version, value, status, detail) of every ``results`` row of the run."""
    return db.query("select case_id, seed, metric, metric_version, value, status, detail from results "
                    "where run_id = ? order by case_id, seed, metric", [run_id])


def set_result_rows(db: Reader, run_id: str) -> list[tuple[Any, ...]]:
    """(metric, metric_version, value, ci_low, ci_high, n, status, detail) of every set result of the run."""
    return db.query("select metric, metric_version, value, ci_low, ci_high, n, status, detail from set_results "
                    "where run_id = ? order by metric", [run_id])


def image_hashes(db: Reader, run_id: str) -> list[tuple[Any, ...]]:
    """(case_id, seed, kind, sha256 hex of the PNG) of every stored image of the run.

    In a loaded baseline file (which has an ``image_digests`` table: images travel as hashes, thumbnails
    optional) the listed hash is used where no PNG travelled, and the PNG's own hash where one did."""
    own = db.query("select case_id, seed, kind, sha256(png) from images where run_id = ?", [run_id])
    if "sha256" not in _columns(db, "image_digests"):
        return sorted(own, key=_key)
    listed = {_key(r): r for r in db.query("select case_id, seed, kind, sha256 from image_digests where run_id = ?",
                                           [run_id])}
    listed.update({_key(r): r for r in own})
    return sorted(listed.values(), key=_key)


def _key(r: tuple[Any, ...]) -> tuple[str, int, str]:
    return (str(r[0]), int(r[1]), str(r[2]))


def region_rows(db: Reader, run_id: str) -> list[tuple[Any, ...]]:
    """(case_id, seed, map_kind, rank, x, y, side, score, crop_x, crop_y, crop_w, crop_h) of every stored region
    of the run (where the report's crops look), in key order; empty on a file older than the ``regions`` table."""
    if "run_id" not in _columns(db, "regions"):
        return []
    return db.query("select case_id, seed, map_kind, rank, x, y, side, score, crop_x, crop_y, crop_w, crop_h "
                    "from regions where run_id = ? order by case_id, seed, map_kind, rank", [run_id])


def pixel_rows(db: Reader, run_id: str) -> list[tuple[Any, ...]]:
    """(case_id, seed, kind, width, height, tile_side, image_sha256) of every full-resolution image of the run."""
    if "run_id" not in _columns(db, "pixels"):
        return []
    return db.query("select case_id, seed, kind, width, height, tile_side, image_sha256 from pixels "
                    "where run_id = ? order by case_id, seed, kind", [run_id])


def tile_hashes(db: Reader, run_id: str) -> list[tuple[Any, ...]]:
    """(image_sha256, tile_y, tile_x, sha256 hex of the tile's bytes) of every stored tile of the run's images.

    In a loaded baseline file (a ``tile_digests`` table: tiles travel as hashes) the listed hashes are used."""
    if "sha256" in _columns(db, "tile_digests"):
        return db.query("select image_sha256, tile_y, tile_x, sha256 from tile_digests where image_sha256 in "
                        "(select image_sha256 from pixels where run_id = ?) order by image_sha256, tile_y, tile_x",
                        [run_id])
    if "data" not in _columns(db, "tiles"):
        return []
    return db.query("select image_sha256, tile_y, tile_x, sha256(data) from tiles where image_sha256 in "
                    "(select image_sha256 from pixels where run_id = ?) order by image_sha256, tile_y, tile_x",
                    [run_id])
