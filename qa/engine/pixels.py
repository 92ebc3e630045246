"""What a run keeps at full resolution, per case (its first seed): the strongest regions of its map and the
reference, output and map as lossless tiles. No storage here (the shard's commit writes them).

Why tiles of the whole image, and not crops of the regions only: a compare view shows the approved run and the
candidate *at the same places*, and the candidate's places are chosen when the candidate runs, after the approved
run is done. So every run keeps enough to cut any place later: its output (8-bit, as thumbnails quantise it) and
its map (16-bit: value x 65535, full scale 1.0 luma) in tiles of :data:`TILE_SIDE` px, lossless WebP (PNG for
the 16-bit map, or where Pillow has no WebP). The reference is stored the same way; tiles are named by the hash
of the image's pixels, so a reference set's images are stored once for all runs and decoders.

Bytes (``docs/benchmarks.md`` has the measured numbers): a photo's output costs about 0.45 x its raw size
(W x H x 3 bytes; noise-like output at most about 1.0 x), a map a few percent of W x H x 2; the crop box of a
region is whole tiles (:data:`CROP_TILES` x :data:`CROP_TILES`), so a crop is served from the stored tile bytes
without re-encoding.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from functools import partial

import numpy as np
from PIL import Image

from qa.imageio import to_uint8
from qa.metrics.invented.regions import REGION_SIDE, Region, strongest_regions
from qa.store.db import Store
from qa.store.pixels import MAP_SCALE, tiled_references
from qa.store.records import RegionRow, TiledImage

#: side of a stored tile, pixels
TILE_SIDE = 128
#: a crop box is this many tiles a side (256 px: a region of REGION_SIDE px always fits inside with context)
CROP_TILES = 2
#: regions kept per case
TOP_REGIONS = 3
#: finished runs of one decoder and reference set whose full-resolution tiles are kept, newest first (approved
#: and unfinished runs are kept besides): the candidate and the run before it
KEEP_LATEST = 2
#: the maps regions are found in, in order of preference: maps of invented detail only (RMS amplitude of invented
#: luma, the units the report's crops are drawn in). Other metrics' maps (SSIM's dissimilarity, LPIPS) measure
#: something else, are dense (a 16-bit SSIM map of a 2048 x 1280 photo: ~4 MB of tiles) and are not kept.
REGION_MAPS = ("invented_detail", "invented_detail_baseline")
#: the image a map compares the output with, where it is not the reference
MAP_COMPARED = {"invented_detail_baseline": "baseline"}
#: the metric that located the strongest invented region of a map (its ``peak_y``, ``peak_x``): the first crop
#: goes there, so the report shows the region the worst-images rule read (regions are located once)
MAP_LOCATED_BY = {"invented_detail": "invented_peak"}


def located(name: str, extras: Mapping[str, Mapping[str, float]], h: int, w: int) -> tuple[int, int] | None:
    """The centre (y, x) of map ``name``'s strongest region as :data:`MAP_LOCATED_BY` located it, when that
    metric ran and gave a centre inside the (h, w) map; else None."""
    extra = extras.get(MAP_LOCATED_BY.get(name, ""), {})
    if "peak_y" not in extra or "peak_x" not in extra:
        return None
    y, x = int(extra["peak_y"]), int(extra["peak_x"])
    return (y, x) if 0 <= y < h and 0 <= x < w else None


def _encode(tile: np.ndarray) -> bytes:
    """Lossless bytes of a uint8 (h, w, 3) tile (WebP, else PNG) or a uint16 (h, w) tile (PNG)."""
    buf = io.BytesIO()
    if tile.dtype == np.uint16:
        Image.fromarray(tile).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()
    img = Image.fromarray(tile)
    try:  # method 0: about as small as method 4 on photos (within 10%) and 5-20x faster
        img.save(buf, format="WEBP", lossless=True, method=0, quality=0, exact=True)
    except (OSError, KeyError, ValueError):  # Pillow without WebP
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def pixel_sha256(pixels: np.ndarray) -> str:
    """The hash that names a stored image: its dtype, shape and bytes."""
    arr = np.ascontiguousarray(pixels)
    head = f"{arr.dtype.str}:{'x'.join(map(str, arr.shape))}:".encode()
    return hashlib.sha256(head + arr.tobytes()).hexdigest()


def tiled(case_id: str, seed: int, kind: str, pixels: np.ndarray) -> TiledImage:
    """A uint8 (H, W, 3) or uint16 (H, W) image as a :class:`TiledImage` of :data:`TILE_SIDE` px tiles."""
    h, w = pixels.shape[:2]
    tiles = {(ty, tx): _encode(np.ascontiguousarray(pixels[ty * TILE_SIDE:(ty + 1) * TILE_SIDE,
                                                           tx * TILE_SIDE:(tx + 1) * TILE_SIDE]))
             for ty in range(-(-h // TILE_SIDE)) for tx in range(-(-w // TILE_SIDE))}
    return TiledImage(case_id, seed, kind, int(w), int(h), TILE_SIDE, pixel_sha256(pixels), tiles)


def _tiles_of(case_id: str, seed: int, kind: str, image: np.ndarray) -> dict[tuple[int, int], bytes]:
    """The tiles of a float (H, W, 3) image (:func:`tiled`), for a :class:`TiledImage` named by its hash."""
    return tiled(case_id, seed, kind, to_uint8(image)).tiles or {}


def map_pixels(values: np.ndarray) -> np.ndarray:
    """A float map (H, W) >= 0 as stored: uint16 round(clip(v, 0, 1) x :data:`MAP_SCALE`), NaN as 0."""
    return (np.clip(np.nan_to_num(np.asarray(values, np.float64)), 0.0, 1.0) * MAP_SCALE + 0.5).astype(np.uint16)


def _axis_start(lo: int, length: int, n: int) -> int:
    """First tile index of a run of ``CROP_TILES`` tiles (of ``n`` along the axis) that holds ``[lo, lo +
    length)``, the window as near the run's middle as the tiles allow."""
    span = min(CROP_TILES, n)
    first = max(0, -(-(lo + length) // TILE_SIDE) - span)  # the last tile must reach the window's end
    last = min(lo // TILE_SIDE, n - span)  # the first tile must start at or before the window
    ideal = round((lo + length / 2 - span * TILE_SIDE / 2) / TILE_SIDE)
    return min(max(ideal, first), max(first, last))


def crop_box(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the whole tiles, at most :data:`CROP_TILES` a side, that hold ``region`` (clipped to the
    image)."""
    tx = _axis_start(region.x, region.side, -(-width // TILE_SIDE))
    ty = _axis_start(region.y, region.side, -(-height // TILE_SIDE))
    x, y = tx * TILE_SIDE, ty * TILE_SIDE
    return x, y, min(CROP_TILES * TILE_SIDE, width - x), min(CROP_TILES * TILE_SIDE, height - y)


def region_map(maps: Mapping[str, np.ndarray]) -> str | None:
    """The metric whose map the regions are found in: the first of :data:`REGION_MAPS` present, else None."""
    return next((name for name in REGION_MAPS if name in maps), None)


def reference_sha256(pixels: np.ndarray) -> str:
    """The hash that names a float (H, W, 3) reference's stored tiles (:func:`pixel_sha256` of its 8 bits)."""
    return pixel_sha256(to_uint8(pixels))


def stored_references(store: Store, references: Mapping[str, np.ndarray | None]) -> dict[str, str]:
    """Case id -> the pixel hash of its reference (``references``: case id -> float (H, W, 3) image) where the
    store already holds that reference's tiles (an earlier run of the same set): :func:`keep` names them instead
    of encoding them again. Read before a shard (the store is not opened while one is scored); a reference is
    hashed only when some stored reference of its case could match."""
    known = tiled_references(store, [c for c, ref in references.items() if ref is not None])
    out = {}
    for case_id, shas in known.items():
        ref = references[case_id]
        if ref is not None and (sha := reference_sha256(ref)) in shas:
            out[case_id] = sha
    return out


def keep(case_id: str, seed: int, output: np.ndarray, compared: Mapping[str, np.ndarray | None],
         maps: Mapping[str, np.ndarray], extras: Mapping[str, Mapping[str, float]] | None = None,
         stored_reference: str | None = None) -> tuple[list[RegionRow], list[TiledImage]]:
    """The regions and tiled images of one case: ``output`` float (H, W, 3) in [0, 1]; ``compared``: the images
    a map may compare it with (``reference``, ``baseline``; None where there is none); ``maps``: metric -> its
    (H, W) map of this output; ``extras``: metric -> its side numbers of this output (the first region is the
    one :data:`MAP_LOCATED_BY`'s metric located); ``stored_reference``: the reference's pixel hash when the store
    holds its tiles already (:func:`stored_references`: it is named, not encoded). Without an invented-detail map
    (:data:`REGION_MAPS`) of the output's size only the output is kept (a later run's crops can still show it at
    their places)."""
    images = [tiled(case_id, seed, "output", to_uint8(output))]
    name = region_map({k: v for k, v in maps.items() if v is not None and v.shape == output.shape[:2]})
    if name is None:
        return [], images
    kind = MAP_COMPARED.get(name, "reference")
    other = compared.get(kind)
    if other is not None and other.shape == output.shape:
        if kind == "reference" and stored_reference is not None:
            h, w = other.shape[:2]
            images.append(TiledImage(case_id, seed, kind, int(w), int(h), TILE_SIDE, stored_reference, None,
                                     partial(_tiles_of, case_id, seed, kind, other)))
        else:
            images.append(tiled(case_id, seed, kind, to_uint8(other)))
    stored = map_pixels(maps[name])
    images.append(tiled(case_id, seed, f"map:{name}", stored))
    h, w = stored.shape
    # regions of the map as stored (what the report reads back), in the stored map's units / MAP_SCALE
    found = strongest_regions(stored.astype(np.float32) / MAP_SCALE, k=TOP_REGIONS, side=min(REGION_SIDE, h, w),
                              first=located(name, extras or {}, h, w))
    rows = [RegionRow(case_id, seed, f"map:{name}", rank, r.x, r.y, r.side, r.score, *crop_box(r, w, h))
            for rank, r in enumerate(found)]
    return rows, images
