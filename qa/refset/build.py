"""Make a reference set from any folder of images: ``qa refset build FOLDER [--captions FILE] [--out DIR]``.

The folder is scanned recursively for the files :data:`IMAGE_SUFFIXES` names (names starting with ``.`` are
skipped); every other file (except the manifest and the caption file) is named in one warning, never dropped
silently (docs/images.md). Every image is validated with :func:`qa.imageio.load_image`: a bad file is reported by
name and skipped, the others go on. The manifest (``id, file, caption, licence, source, sha256``) is written into the
folder itself, or, with ``out``, next to byte-exact copies of the good images (or, with ``tile``, next to
``tile`` x ``tile`` PNG tiles cut from them).

Captions come from a CSV/TSV (columns ``file, caption`` and optionally ``licence, source``; with or without
that header) or a JSON file (``{"file": "caption"}``, ``{"file": {"caption": ..., "licence": ...}}`` or a list
of objects with a ``file`` key). A caption file key matches an image by its path relative to the folder, or by
its bare file name when that is unambiguous. Without a caption file, the captions of an existing manifest in
the target folder are kept. Missing captions stay empty and are listed in one warning.

Text sets: a caption file with a ``text`` column (CSV/TSV) or key (JSON), or an existing manifest with a ``text``
column, makes the result a text set (the manifest gets the ``text`` column; lines of one cell are kept, a JSON
value may use ``\n`` between lines). A text set cannot be tiled: the true text belongs to the whole image.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from qa.errors import BadImageError, ManifestError
from qa.hashing import sha256_bytes
from qa.imageio import IMAGE_SUFFIXES, MIN_SIDE, load_image, to_uint8
from qa.refset.default_sources import encode_png
from qa.refset.manifest import MANIFEST, TEXT_COLUMN, normalise_text, write_manifest

UNSTATED = "unstated"
_META = ("caption", "licence", "source", TEXT_COLUMN)


@dataclass
class BuildResult:
    """What :func:`build_reference_set` did.

    ``root``: the set folder; ``manifest``: the manifest written; ``items``: its rows; ``problems``: one line per
    bad file (skipped), naming it; ``warnings``: missing captions, unmatched caption keys, duplicate content;
    ``notes``: per written file, the conversions applied while loading (e.g. alpha flattened).
    """

    root: Path
    manifest: Path
    items: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no file was skipped."""
        return not self.problems

    def summary(self) -> str:
        """Human-readable report: counts, then every problem and warning on its own line."""
        lines = [f"wrote {self.manifest} with {len(self.items)} item(s); {len(self.problems)} bad file(s) skipped"]
        lines += [f"  bad: {p}" for p in self.problems]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def scan_images(folder: Path, exclude: Path | None = None) -> tuple[list[Path], list[str], list[str]]:
    """Image files under ``folder`` (sorted, recursive, hidden names skipped, ``exclude`` subtree skipped).

    Returns the files, problems for symlinks that point outside ``folder`` (those are not returned), and the
    other files (not hidden) whose suffix is not in :data:`IMAGE_SUFFIXES`, relative to ``folder``.
    """
    root = folder.resolve()
    skip = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    problems: list[str] = []
    others: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (skip is None or (here / d).resolve() != skip))
        for name in sorted(filenames):
            path = here / name
            if name.startswith("."):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                others.append(path.relative_to(folder).as_posix())
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                problems.append(f"{path}: symbolic link to {path.resolve()} outside {folder}; skipped")
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix()), problems, sorted(others)


def read_captions(path: str | Path) -> dict[str, dict[str, str]]:
    """Read a caption file; returns ``{relative file: {"caption": ..., ["licence": ..., "source": ...]}}``.

    Raises :class:`ManifestError` naming the file (and line) when it cannot be read or is ambiguous.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read captions ({exc})", "use a UTF-8 CSV, TSV or JSON file") from exc
    entries = _json_captions(path, text) if path.suffix.lower() == ".json" else _table_captions(path, text)
    out: dict[str, dict[str, str]] = {}
    for where, key, meta in entries:
        norm = _norm_key(key)
        if not norm:
            raise ManifestError(f"{path}{where}: empty file name")
        if norm in out:
            raise ManifestError(f"{path}{where}: {key!r} is listed twice", "keep one caption per file")
        out[norm] = {k: normalise_text(str(v)) if k == TEXT_COLUMN else " ".join(str(v).split())
                     for k, v in meta.items() if k in _META and v is not None}
    return out


def _norm_key(key: str) -> str:
    return PurePosixPath(key.strip().replace("\\", "/")).as_posix().removeprefix("./") if key.strip() else ""


def _json_captions(path: Path, text: str) -> list[tuple[str, str, dict[str, str]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: invalid JSON ({exc})") from exc
    entries = []
    if isinstance(data, dict):
        for key, value in data.items():
            meta = value if isinstance(value, dict) else {"caption": value}
            if not isinstance(meta.get("caption", ""), str):
                raise ManifestError(f"{path}: caption of {key!r} is not a string")
            entries.append((f" [{key!r}]", key, meta))
    elif isinstance(data, list):
        for n, obj in enumerate(data):
            if not isinstance(obj, dict) or not isinstance(obj.get("file"), str):
                raise ManifestError(f"{path}: entry {n} has no \"file\" string", 'use {"file": ..., "caption": ...}')
            entries.append((f" [entry {n}]", obj["file"], obj))
    else:
        raise ManifestError(f"{path}: expected a JSON object or list", '{"image.png": "A caption."}')
    return entries


def _table_captions(path: Path, text: str) -> list[tuple[str, str, dict[str, str]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ManifestError(f"{path}: cannot parse ({exc})") from exc
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "file" in header:
        names, body, first = header, rows[1:], 2
    else:
        names, body, first = ["file", "caption"], rows, 1
    entries = []
    for n, row in enumerate(body, start=first):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 2 or len(row) > len(names):
            raise ManifestError(f"{path}:{n}: expected {len(names)} column(s) ({', '.join(names)}), got {len(row)}",
                                "quote captions that contain the delimiter")
        record = dict(zip(names, row, strict=False))
        entries.append((f":{n}", record["file"], record))
    return entries


def _existing_meta(manifest: Path) -> dict[str, dict[str, str]]:
    """Caption/licence/source of an existing manifest, by file (empty when absent or unreadable)."""
    try:
        with open(manifest, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            keys = [k for k in _META if k != TEXT_COLUMN or k in (reader.fieldnames or [])]
            return {_norm_key(r.get("file") or ""): {k: (r.get(k) or "").strip() for k in keys} for r in reader}
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}


def _match(rels: list[str], table: dict[str, dict[str, str]]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Pair caption keys with images (exact relative path first, then unambiguous bare name)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for rel in rels:
        by_name[PurePosixPath(rel).name].append(rel)
    matched: dict[str, dict[str, str]] = {}
    unused = []
    for key, meta in table.items():
        if key in by_name.get(PurePosixPath(key).name, []):
            matched[key] = meta
        elif "/" not in key and len(by_name.get(key, [])) == 1 and by_name[key][0] not in table:
            matched[by_name[key][0]] = meta
        else:
            unused.append(key)
    return matched, unused


def _ids(rels: list[str]) -> dict[str, str]:
    """Item ids: the relative path without its suffix, or with it where two files would collide."""
    stems = Counter(PurePosixPath(r).with_suffix("").as_posix() for r in rels)
    return {r: (s if stems[s] == 1 else r) for r in rels for s in [PurePosixPath(r).with_suffix("").as_posix()]}


def _listing(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def build_reference_set(
    folder: str | Path,
    captions: str | Path | None = None,
    out: str | Path | None = None,
    tile: int | None = None,
    *,
    licence: str = UNSTATED,
    source: str = UNSTATED,
    max_pixels: int | None = None,
) -> BuildResult:
    """Scan ``folder``, validate every image, and write a reference set; see the module docstring.

    ``out``: write the manifest there beside copies of the good images (default: in ``folder``). ``tile``:
    cut each good image into non-overlapping ``tile`` x ``tile`` 8-bit RGB PNG tiles (grid from the top-left,
    partial tiles at the right/bottom edges dropped; needs ``out``). ``licence``/``source``: column values for
    items whose caption file gives none. Raises :class:`ManifestError` for a missing folder, a bad caption
    file or a folder without any usable image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: not a folder", "pass a folder of images")
    if tile is not None and tile < MIN_SIDE:
        raise ManifestError(f"tile size {tile} is below the minimum side of {MIN_SIDE} pixels")
    target = Path(out) if out is not None else folder
    in_place = target.resolve() == folder.resolve()
    if tile is not None and in_place:
        raise ManifestError("tiling writes new image files: it needs an output folder",
                            "pass --out DIR (not the source folder)")
    table = read_captions(captions) if captions is not None else _existing_meta(target / MANIFEST)
    text_set = any(TEXT_COLUMN in meta for meta in table.values())
    if text_set and tile is not None:
        raise ManifestError("a text set cannot be tiled: its true text belongs to each whole image",
                            "build it without --tile (or drop the text column)")
    paths, problems, others = scan_images(folder, exclude=None if in_place else target)
    result = BuildResult(root=target, manifest=target / MANIFEST, problems=problems)
    own = {(folder / MANIFEST).resolve(), Path(captions).resolve() if captions is not None else None}
    others = [o for o in others if (folder / o).resolve() not in own]
    rels = [p.relative_to(folder).as_posix() for p in paths]
    matched, unused = _match(rels, table)
    if captions is not None and unused:
        result.warnings.append(f"{len(unused)} caption(s) for files not found in {folder}: {_listing(unused)}")
    ids = _ids(rels)
    rows: list[dict[str, str]] = []
    missing: list[str] = []
    by_hash: dict[str, list[str]] = defaultdict(list)
    for path, rel in zip(paths, rels, strict=True):
        try:
            loaded = load_image(path, max_pixels=max_pixels)
        except BadImageError as exc:
            result.problems.append(str(exc).split("\n", 1)[0])
            continue
        meta = matched.get(rel, {})
        caption = meta.get("caption", "")
        if not caption:
            missing.append(rel)
        base = {"caption": caption, "licence": meta.get("licence") or licence,
                "source": meta.get("source") or source}
        if text_set:
            base[TEXT_COLUMN] = meta.get(TEXT_COLUMN, "")
        if tile is None:
            if not in_place:
                try:
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target / rel)
                except OSError as exc:
                    raise ManifestError(f"{target / rel}: cannot copy {path} ({exc})") from exc
            rows.append({"id": ids[rel], "file": rel, **base, "sha256": loaded.sha256})
            by_hash[loaded.sha256].append(rel)
            if loaded.notes:
                result.notes[rel] = loaded.notes
            continue
        tiles = _write_tiles(loaded.pixels, target, ids[rel], tile)
        if not tiles:
            h, w = loaded.pixels.shape[:2]
            result.problems.append(f"{path}: {w}x{h} is smaller than one {tile}x{tile} tile; skipped")
            continue
        for tile_rel, digest, (y, x) in tiles:
            crop = f"crop x={x} y={y} size={tile} of {rel}"
            rows.append({"id": PurePosixPath(tile_rel).with_suffix("").as_posix(), "file": tile_rel, **base,
                         "source": f"{base['source']}; {crop}", "sha256": digest})
            by_hash[digest].append(tile_rel)
            if loaded.notes:
                result.notes[tile_rel] = loaded.notes
    if missing:
        result.warnings.append(f"{len(missing)} image(s) without a caption (left empty): {_listing(missing)}")
    dups = [files for files in by_hash.values() if len(files) > 1]
    if dups:
        result.warnings.append("identical content: " + "; ".join(" = ".join(f) for f in dups))
    if others:
        result.warnings.append(f"{len(others)} file(s) not read, their type is not one qa reads as an image "
                               f"({' '.join(IMAGE_SUFFIXES)}; see docs/images.md): {_listing(others)}")
    if not rows:
        raise ManifestError(f"{folder}: no usable images ({len(result.problems)} bad, {len(paths)} found)",
                            _listing(result.problems, 5) or f"add {', '.join(IMAGE_SUFFIXES)} files"
                            + (f" (not read: {_listing(others, 5)}; convert them to PNG)" if others else ""))
    _refuse_duplicate_ids(rows)
    result.items = rows
    try:
        target.mkdir(parents=True, exist_ok=True)
        result.manifest = write_manifest(target, rows, text_set=text_set)
    except OSError as exc:
        raise ManifestError(f"{target / MANIFEST}: cannot write the manifest ({exc})",
                            "pass --out DIR to write the set somewhere writable") from exc
    return result


def _refuse_duplicate_ids(rows: list[dict[str, str]]) -> None:
    """ManifestError naming both files when two manifest rows would get the same id (nothing is written)."""
    first: dict[str, str] = {}
    for row in rows:
        if row["id"] in first:
            raise ManifestError(f"two images would get the same id {row['id']!r}: {first[row['id']]} and {row['file']}",
                                "rename one of the files; ids must be unique in a reference set")
        first[row["id"]] = row["file"]


def _write_tiles(pixels: np.ndarray, target: Path, item_id: str, tile: int) -> list[tuple[str, str, tuple[int, int]]]:
    """Write the full ``tile`` x ``tile`` tiles of float (H, W, 3) ``pixels``; returns (file, sha256, (y, x))."""
    h, w = pixels.shape[:2]
    written = []
    for y in range(0, h - tile + 1, tile):
        for x in range(0, w - tile + 1, tile):
            rel = f"{item_id}_y{y}_x{x}.png"
            data = encode_png(to_uint8(pixels[y:y + tile, x:x + tile]))
            try:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                (target / rel).write_bytes(data)
            except OSError as exc:
                raise ManifestError(f"{target / rel}: cannot write tile ({exc})") from exc
            written.append((rel, sha256_bytes(data), (y, x)))
    return written
