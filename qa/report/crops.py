"""Native-resolution crops of the strongest invented regions, for the candidate-vs-approved view.

Each run stores, per case, its reference, output and map at full resolution as lossless tiles, and the strongest
regions of its map (:mod:`qa.store.pixels`). For one image of a candidate and its approved run this shows, at
the candidate's regions (strongest first) and at the approved run's strongest region, the same box of
reference | approved | candidate | map, cut from the stored tiles: the same pixels of every image, at 1:1, with a
2x / 4x nearest-neighbour zoom (``image-rendering: pixelated``) and a toggle that puts the approved run in the
candidate's columns (blink between them to see what changed). Each place says its coordinates and the map's
mean over its window in both runs (the local score). Pure CSS: no script, no network.

Size: the stored tile bytes are used as they are (lossless WebP or PNG; maps are coloured and re-encoded, a few
KB each). Each distinct image is embedded once, worst images first, up to :data:`CROP_EMBED_BUDGET` bytes of
base64; the rest are written beside the report (``<report name>_crops/``, a file per image named by its hash)
and referred to by relative URL, so the HTML file's size does not grow with the number of images or their
resolution.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from qa.report.safe import esc, fmt
from qa.store import Store
from qa.store import pixels as store_pixels
from qa.store.db import Reader
from qa.store.records import RegionRow, RunInfo, TiledImage

#: most bytes of base64 crop images embedded in the HTML; the rest are written beside it
CROP_EMBED_BUDGET = 4_000_000
#: the HTML file's size target: crops are embedded only in what the rest of the page leaves of it
PAGE_BUDGET = 14_500_000
#: images (worst first) of each decoder that get crops
CROP_ROWS = 8
#: strongest regions of the approved run shown besides the candidate's (where the approved run invented most)
APPROVED_PLACES = 1
#: map value drawn as full brightness: luma RMS amplitude of invented detail (the scale of ``qa score --maps``)
MAP_FULL = 0.05
#: zoom factors offered (nearest neighbour)
ZOOMS = (1, 2, 4)
#: colour ramp of maps: (position in [0, 1], RGB); black = no invention, white = MAP_FULL or more
RAMP = ((0.0, (0, 0, 0)), (0.35, (170, 0, 20)), (0.7, (255, 150, 0)), (1.0, (255, 255, 225)))

CSS = """
.crops{--z:1;margin:8px 0 18px}.crops>input{position:absolute;opacity:0;pointer-events:none}
.crops .ctl{font-size:13px;margin:4px 0}.crops .ctl label{margin-right:6px;padding:0 5px;border:1px solid #556;
border-radius:3px;cursor:pointer}.crops .z1:checked~.ctl .lz1,.crops .z2:checked~.ctl .lz2,
.crops .z4:checked~.ctl .lz4,.crops .flip:checked~.ctl .lflip{background:#9cc3ff;color:#0f1419}
.crops .z2:checked~.crop-body{--z:2}.crops .z4:checked~.crop-body{--z:4}
.crop-place{margin:10px 0}.crop-head{font-size:12px;color:#ccd;margin:2px 0}
.crop-cols{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}.crop-cols figure{margin:0}
.crop-cols figcaption{font-size:12px}.crop{position:relative;overflow:hidden;background:#222;color:#bbb;
font-size:11px}.crop i{position:absolute;background-size:100% 100%;background-repeat:no-repeat;
image-rendering:pixelated;image-rendering:crisp-edges}
.crop b.win{position:absolute;border:1px dashed #4dd0e1;box-sizing:border-box;pointer-events:none}
.crops .only-appr{display:none}.crops .flip:checked~.crop-body .only-cand{display:none}
.crops .flip:checked~.crop-body .only-appr{display:block}
.linked-crops{position:sticky;bottom:0;margin:0;padding:6px 10px;background:#5a2a00;color:#ffe0c0;font-size:13px}
"""


@dataclass
class CropData:
    """The regions and tiled images of the report's runs; tiles are read from ``store`` when a view needs them
    (they are named by pixel hash and never change). ``folder``: the relative URL of crops written beside the
    report; ``linked``: file name -> bytes of those the rendered HTML refers to (``write_report`` writes them)."""

    store: Store | None
    regions: dict[str, list[RegionRow]] = field(default_factory=dict)
    images: dict[tuple[str, str, str], TiledImage] = field(default_factory=dict)
    folder: str = "report_crops"
    linked: dict[str, bytes] = field(default_factory=dict)
    pool: CropPool = field(default_factory=lambda: CropPool())

    def css(self, page_bytes: int) -> str:
        """The crop images' CSS for a page whose other parts take ``page_bytes``: embedded up to
        :data:`CROP_EMBED_BUDGET` and within :data:`PAGE_BUDGET`, linked from :attr:`folder` beyond (recorded in
        :attr:`linked`)."""
        budget = max(0, min(CROP_EMBED_BUDGET, PAGE_BUDGET - page_bytes))
        rules = self.pool.css(self.folder, budget)
        self.linked.update(self.pool.linked)
        return rules

    def tiles(self, wanted: set[tuple[str, int, int]]) -> dict[tuple[str, int, int], bytes]:
        """The stored tiles of ``wanted`` (image sha256, row, column)."""
        if not wanted or self.store is None:
            return {}
        with self.store.snapshot() as db:
            return store_pixels.tiles(db, wanted)


def load_crop_data(db: Reader, store: Store | None, run_ids: list[str]) -> CropData:
    """Regions and tiled images (without tiles) of ``run_ids``."""
    return CropData(store, store_pixels.regions_of(db, run_ids), store_pixels.images_of(db, run_ids))


@dataclass(frozen=True)
class Place:
    """Where to look: a region window (x, y, side) found in ``source``'s map (``rank`` 0 = its strongest) and the
    crop box (x, y, w, h) shown around it; pixels of the output."""

    source: str
    rank: int
    x: int
    y: int
    side: int
    box: tuple[int, int, int, int]
    map_kind: str


def places(candidate: list[RegionRow], approved: list[RegionRow], n_approved: int = APPROVED_PLACES) -> list[Place]:
    """The candidate's regions, strongest first, then the approved run's ``n_approved`` strongest whose crop box
    is not already shown."""
    out = [Place("candidate", r.rank, r.x, r.y, r.side, (r.crop_x, r.crop_y, r.crop_w, r.crop_h), r.map_kind)
           for r in sorted(candidate, key=lambda r: r.rank)]
    boxes = {p.box for p in out}
    for r in sorted(approved, key=lambda r: r.rank)[:n_approved]:
        box = (r.crop_x, r.crop_y, r.crop_w, r.crop_h)
        if box not in boxes:
            out.append(Place("approved", r.rank, r.x, r.y, r.side, box, r.map_kind))
            boxes.add(box)
    return out


def _mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class CropPool:
    """Distinct crop images of one report, as CSS classes ``k0``, ``k1``, ... (in the order added: worst images
    first). :meth:`css` embeds them up to a budget of base64 bytes and links the rest as files in a folder."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._data: list[tuple[str, bytes]] = []  # (mime, bytes)
        self.linked: dict[str, bytes] = {}
        self.embedded_bytes = 0

    def add(self, data: bytes) -> str | None:
        """The class of an encoded image (PNG or WebP), None for bytes that are neither."""
        mime = _mime(data)
        if mime is None:
            return None
        key = hashlib.sha256(data).hexdigest()
        if key not in self._names:
            self._names[key] = f"k{len(self._data)}"
            self._data.append((mime, data))
        return self._names[key]

    def __len__(self) -> int:
        return len(self._data)

    def size(self, name: str) -> int:
        """Bytes of the image of class ``name`` (as stored: lossless WebP or PNG)."""
        return len(self._data[int(name[1:])][1])

    def css(self, folder: str, budget: int) -> str:
        """One ``background-image`` rule per image: a data URI while ``budget`` (bytes of base64) lasts, else a
        URL relative to the report, ``folder/<hash>.<ext>`` (the file's bytes go to :attr:`linked`)."""
        rules = []
        self.embedded_bytes = 0
        for i, (mime, data) in enumerate(self._data):
            size = (len(data) + 2) // 3 * 4
            if self.embedded_bytes + size <= budget:
                self.embedded_bytes += size
                rules.append(f".k{i}{{background-image:url(data:{mime};base64,{base64.b64encode(data).decode()})}}")
            else:
                name = hashlib.sha256(data).hexdigest()[:24] + (".png" if mime == "image/png" else ".webp")
                self.linked[name] = data
                rules.append(f".k{i}{{background-image:url({folder}/{name})}}")
        return "".join(rules)


def _decode(data: bytes) -> np.ndarray | None:
    """A stored tile's pixels (uint8 RGB, or the raw integers of a 16-bit map), None if unreadable."""
    if _mime(data) is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img) if img.mode.startswith("I") else np.asarray(img.convert("RGB"))
    except (OSError, ValueError, UnidentifiedImageError):
        return None


def colour_map(values: np.ndarray) -> np.ndarray:
    """A map (H, W) in its units -> uint8 RGB on :data:`RAMP`, :data:`MAP_FULL` and above drawn white."""
    t = np.clip(np.asarray(values, np.float64) / MAP_FULL, 0.0, 1.0)
    pos = [p for p, _ in RAMP]
    return np.stack([np.interp(t, pos, [c[i] for _, c in RAMP]) for i in range(3)], axis=-1).round().astype(np.uint8)


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _keys(image: TiledImage, box: tuple[int, int, int, int]) -> list[tuple[str, int, int]]:
    """The tiles of ``image`` that overlap ``box``."""
    t = image.tile_side
    x, y, w, h = box
    rows = range(max(0, y // t), min(-(-image.height // t), -(-(y + h) // t)))
    cols = range(max(0, x // t), min(-(-image.width // t), -(-(x + w) // t)))
    return [(image.image_sha256, ty, tx) for ty in rows for tx in cols]


class _Cutter:
    """Crops of one image pair view: tiles fetched once, maps coloured once per tile."""

    def __init__(self, crops: CropData, pool: CropPool, wanted: list[tuple[TiledImage, tuple[int, int, int, int]]]):
        self.pool = pool
        self.tiles = crops.tiles({k for img, box in wanted for k in _keys(img, box)})
        self._coloured: dict[tuple[str, int, int], str | None] = {}
        self.used: set[str] = set()  # classes of the images this view shows

    def _class(self, key: tuple[str, int, int], is_map: bool) -> str | None:
        data = self.tiles.get(key)
        if data is None:
            return None
        if not is_map:
            return self.pool.add(data)
        if key not in self._coloured:
            raw = _decode(data)
            self._coloured[key] = None if raw is None or raw.ndim != 2 else self.pool.add(
                _png(colour_map(raw.astype(np.float64) / store_pixels.MAP_SCALE)))
        return self._coloured[key]

    def crop(self, image: TiledImage | None, box: tuple[int, int, int, int], label: str, window: Place) -> str:
        """The crop element of ``image`` at ``box`` (CSS px scale with ``--z``), the region window outlined."""
        x, y, w, h = box
        z = "calc(var(--z)*{}px)".format
        parts = [f'<div class="crop" role="img" aria-label="{esc(label)}" style="width:{z(w)};height:{z(h)}">']
        missing = image is None
        if image is not None:
            t = image.tile_side
            for key in _keys(image, box):
                cls = self._class(key, image.kind.startswith("map:"))
                if cls is None:
                    missing = True
                    continue
                self.used.add(cls)
                _, ty, tx = key
                tw, th = min(t, image.width - tx * t), min(t, image.height - ty * t)
                parts.append(f'<i class="{cls}" style="left:{z(tx * t - x)};top:{z(ty * t - y)};width:{z(tw)};'
                             f'height:{z(th)}"></i>')
        if missing:
            parts.append("pixels not kept in the store")
        parts.append(f'<b class="win" style="left:{z(window.x - x)};top:{z(window.y - y)};width:{z(window.side)};'
                     f'height:{z(window.side)}"></b></div>')
        return "".join(parts)

    def local_mean(self, image: TiledImage | None, place: Place) -> float | None:
        """The stored map's mean over the place's window (its units), None where a tile is missing."""
        if image is None:
            return None
        t = image.tile_side
        window = (place.x, place.y, place.side, place.side)
        total = 0.0
        for key in _keys(image, window):
            raw = _decode(self.tiles.get(key, b""))
            if raw is None or raw.ndim != 2:
                return None
            _, ty, tx = key
            y0, x0 = max(place.y - ty * t, 0), max(place.x - tx * t, 0)
            y1, x1 = min(place.y + place.side - ty * t, raw.shape[0]), min(place.x + place.side - tx * t, raw.shape[1])
            total += float(raw[y0:y1, x0:x1].astype(np.float64).sum())
        return total / store_pixels.MAP_SCALE / (place.side * place.side)


def _score(v: float | None) -> str:
    return "not kept" if v is None else fmt(v)


def crop_view(crops: CropData, pool: CropPool, candidate: RunInfo, approved: RunInfo, case_id: str, anchor: str,
              row: int) -> str:
    """The crops of one image of a candidate and its approved run (``row``: its place in the worst-first list;
    rows from :data:`CROP_ROWS` on get a note instead)."""
    if row >= CROP_ROWS:
        return (f'<p class="muted">crops at 1:1 are shown for the {CROP_ROWS} worst images of each decoder; this '
                "is not one of them</p>")
    img = crops.images.get
    cand_rows = [r for r in crops.regions.get(candidate.run_id, []) if r.case_id == case_id]
    appr_rows = [r for r in crops.regions.get(approved.run_id, []) if r.case_id == case_id]
    found = places(cand_rows, appr_rows)
    if not found:
        stored = (candidate.run_id, case_id, "output") in crops.images
        why = ("neither run's map has an invented region in this image" if stored else
               "this run stored no full-resolution pixels (a run from before qa kept them, or without a map)")
        return f'<p class="muted">no crops: {esc(why)}</p>'
    kind = found[0].map_kind
    compared = "reference" if img((candidate.run_id, case_id, "reference")) or img((approved.run_id, case_id, "reference")) \
        else "baseline"
    ref = img((candidate.run_id, case_id, compared)) or img((approved.run_id, case_id, compared))
    cand = {"out": img((candidate.run_id, case_id, "output")), "map": img((candidate.run_id, case_id, kind))}
    appr = {"out": img((approved.run_id, case_id, "output")), "map": img((approved.run_id, case_id, kind))}
    wanted = [(i, p.box) for p in found for i in (ref, cand["out"], cand["map"], appr["out"], appr["map"]) if i]
    wanted += [(i, (p.x, p.y, p.side, p.side)) for p in found for i in (cand["map"], appr["map"]) if i]
    cut = _Cutter(crops, pool, wanted)
    zooms = "".join(f'<input type="radio" name="z-{anchor}" id="z{k}-{anchor}" class="z{k}"{" checked" if k == 1 else ""}>'
                    for k in ZOOMS)
    labels = "".join(f'<label for="z{k}-{anchor}" class="lz{k}">{k}x</label>' for k in ZOOMS)
    parts = [f'<div class="crops">{zooms}<input type="checkbox" id="flip-{anchor}" class="flip">'
             f'<p class="ctl"><b>crops at 1:1</b> of the strongest invented regions ({esc(kind[4:])} map: mean over '
             f"{found[0].side} px windows; dashed: the window), the same pixels of every image. zoom {labels}"
             f'<label for="flip-{anchor}" class="lflip">toggle: approved in the candidate\'s columns</label> '
             f"map: black 0, white {fmt(MAP_FULL)} or more</p><div class=\"crop-body\">"]
    for p in found:
        x, y, w, h = p.box
        c_score, a_score = cut.local_mean(cand["map"], p), cut.local_mean(appr["map"], p)
        parts.append(
            f'<div class="crop-place"><div class="crop-head">{esc(p.source)} region {p.rank + 1}: window x {p.x}-'
            f"{p.x + p.side}, y {p.y}-{p.y + p.side}; crop x {x}-{x + w}, y {y}-{y + h} ({w}x{h} px); local score "
            f"(map mean over the window): candidate {esc(_score(c_score))}, approved {esc(_score(a_score))}</div>"
            '<div class="crop-cols">'
            f"<figure>{cut.crop(ref, p.box, compared, p)}<figcaption>{esc(compared)}</figcaption></figure>"
            f"<figure>{cut.crop(appr['out'], p.box, 'approved output', p)}<figcaption>approved</figcaption></figure>"
            f'<figure><div class="only-cand">{cut.crop(cand["out"], p.box, "candidate output", p)}</div>'
            f'<div class="only-appr">{cut.crop(appr["out"], p.box, "approved output", p)}</div>'
            '<figcaption><span class="only-cand">candidate</span><span class="only-appr">approved (toggled)</span>'
            "</figcaption></figure>"
            f'<figure><div class="only-cand">{cut.crop(cand["map"], p.box, "candidate map", p)}</div>'
            f'<div class="only-appr">{cut.crop(appr["map"], p.box, "approved map", p)}</div>'
            '<figcaption><span class="only-cand">candidate map</span><span class="only-appr">approved map (toggled)'
            "</span></figcaption></figure></div></div>")
    size = sum(pool.size(c) for c in cut.used)
    parts.append(f'</div><p class="ctl">these crops: {len(cut.used)} distinct images, {size / 1e3:.0f} KB (lossless; '
                 "shared with other views where the same pixels are shown)</p></div>")
    return "".join(parts)
