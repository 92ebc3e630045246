"""Regenerate ``reference_sets/text/``: words and lines of text at 8-48 px on flat and photographic grounds.

Run ``python -m qa.refset.text_sources`` to (re)write the folder, or add ``--check`` to compare the shipped tiles
with a fresh render without writing anything. This is a generator, not part of qa's runtime: it needs the fonts
of the Debian packages in :data:`FONT_PACKAGES` (``apt-get install fonts-dejavu-core fonts-liberation
fonts-freefont-ttf fonts-noto-core``); no font file is shipped, only the rendered tiles.

Every tile is 256 x 256 RGB: a flat colour or vertical gradient, or a 256 x 256 crop of a photograph that an
installed package ships (:data:`qa.refset.default_sources.SOURCES`, sha256-checked), with text drawn by Pillow
(FreeType, anti-aliased) in one of three styles: ``plain`` (text on the ground), ``sign`` (a plate behind the
text, a label or a sign) and ``caption`` (a darkened band under the text). Text straight on photographic
texture is left out on purpose: Tesseract does not read it reliably at the reference, and text the OCR cannot
read at the reference measures nothing. Sizes are the font's em size in pixels (capital letters are about 0.7 em tall). Four tiles of
photographs show no text at all: controls on which a decoder must not invent any. The manifest's ``text``
column holds each tile's true strings (one line per line), which makes the folder a text set.

Determinism: glyph rasterisation depends on the FreeType and Pillow builds and on the font package versions;
the shipped folder was made with :data:`MADE_WITH` and ``--check`` reports the largest pixel difference.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from qa.errors import ManifestError
from qa.hashing import sha256_bytes
from qa.refset.default_sources import SOURCES, compare_rendered, encode_png, read_source, write_or_check
from qa.refset.manifest import write_manifest

TILE = 256
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "reference_sets" / "text"
FONT_DIR = Path("/usr/share/fonts/truetype")
#: Debian package -> (licence of the font software, folder under FONT_DIR). Rendered text is not font software.
FONT_PACKAGES = {
    "fonts-dejavu-core": ("Bitstream Vera licence (DejaVu changes public domain)", "dejavu"),
    "fonts-liberation": ("GPL-2 with font exception (Red Hat Liberation 1.07)", "liberation"),
    "fonts-freefont-ttf": ("GPL-3+ with font exception (GNU FreeFont)", "freefont"),
    "fonts-noto-core": ("SIL OFL 1.1 (Google Noto)", "noto"),
}
#: versions that produced the shipped folder
MADE_WITH = {"pillow": "13.0.0", "freetype2": "2.14.3", "numpy": "2.4.6", "scikit-image": "0.26.0",
             "fonts-dejavu-core": "2.37-6", "fonts-liberation": "1:1.07.4-11", "fonts-freefont-ttf": "20120503-10",
             "fonts-noto-core": "20201225-1"}
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


@dataclass(frozen=True)
class TextTile:
    """One tile. ``ground``: ``(r, g, b)``, a gradient ``((r, g, b), (r, g, b))`` top to bottom, or a photo
    source key with its crop corner ``at``. ``font``: file name under one package's folder; ``lines``: the text."""

    id: str
    ground: object
    style: str = "plain"
    font: str = ""
    size: int = 0
    lines: tuple[str, ...] = ()
    colour: tuple[int, int, int] = WHITE
    plate: tuple[int, int, int] = BLACK
    at: tuple[int, int] = (0, 0)
    align: str = "centre"
    what: str = ""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


_NAVY, _CREAM, _YELLOW, _RED = (24, 44, 92), (246, 240, 226), (250, 208, 0), (196, 24, 28)
TILES: tuple[TextTile, ...] = (
    TextTile("exit-sign", (27, 127, 59), "plain", "DejaVuSans-Bold.ttf", 48, ("EXIT",), what="a green exit sign"),
    TextTile("no-parking", WHITE, "plain", "LiberationSans-Bold.ttf", 36, ("NO", "PARKING"), _RED,
             what="a white no-parking sign"),
    TextTile("platform", _NAVY, "plain", "NotoSans-Bold.ttf", 40, ("Platform 4",), what="a navy station sign"),
    TextTile("opening-hours", _CREAM, "plain", "LiberationSerif-Regular.ttf", 22,
             ("Open daily", "9:00 to 17:30", "Closed Mondays"), BLACK, what="a cream notice of opening hours"),
    TextTile("caution", _YELLOW, "plain", "FreeSansBold.ttf", 26, ("CAUTION", "Wet floor", "Do not enter"), BLACK,
             what="a yellow warning sign"),
    TextTile("batch-label", ((236, 236, 236), (200, 204, 210)), "plain", "DejaVuSansMono.ttf", 16,
             ("LOT 2417-B", "EXP 2027-03", "NET 500 g", "REF 88-0193"), BLACK, align="left",
             what="a grey product label"),
    TextTile("menu", WHITE, "plain", "NotoSerif-Regular.ttf", 18,
             ("Soup of the day", "Grilled fish", "Lemon tart", "Black coffee"), BLACK, what="a white menu card"),
    TextTile("street-names", (12, 92, 160), "plain", "FreeSansBold.ttf", 28, ("Harbour Road", "Quay Street"),
             what="a blue street sign"),
    TextTile("figure-caption", (40, 40, 40), "plain", "FreeMonoBold.ttf", 17,
             ("Figure 3: mean", "error per tile", "(32 tiles)"), what="a dark figure caption"),
    TextTile("sale", ((240, 140, 30), (120, 40, 120)), "plain", "LiberationSans-Bold.ttf", 40, ("SUMMER", "SALE 40%"),
             what="an orange-to-purple sale poster"),
    TextTile("small-8", WHITE, "plain", "DejaVuSans.ttf", 8,
             ("Keep out of reach of children.", "Store below 25 C in a dry place.", "Batch 7731, made in 2026.",
              "Read the leaflet before use."), BLACK, align="left", what="a white leaflet with tiny print"),
    TextTile("small-10", (230, 240, 250), "plain", "LiberationSans-Regular.ttf", 10,
             ("Departures every 20 minutes", "from the north entrance.", "Tickets at the kiosk only."), BLACK,
             align="left", what="a pale blue timetable note"),
    TextTile("small-12", WHITE, "plain", "NotoSans-Regular.ttf", 12,
             ("Printed on recycled paper.", "Return this form by 14 May.", "Office hours 8 to 4."), BLACK,
             align="left", what="a white form"),
    TextTile("small-14", (250, 250, 240), "plain", "FreeSerif.ttf", 14,
             ("The museum closes at six.", "Please leave bags at the desk.", "Guided tours start hourly."), BLACK,
             align="left", what="an ivory museum notice"),
    TextTile("espresso-board", "coffee", "sign", "DejaVuSans-Bold.ttf", 28, ("ESPRESSO", "2.50"), WHITE,
             (20, 20, 20), at=(170, 0), what="a black price board over an espresso cup"),
    TextTile("mission-tag", "astronaut", "sign", "LiberationSans-Bold.ttf", 22, ("MISSION 63", "CREW 4"), BLACK,
             WHITE, at=(110, 256), what="a white tag on an orange spacesuit"),
    TextTile("launch-caption", "rocket", "caption", "NotoSans-Regular.ttf", 20, ("Launch pad 40", "Cape Canaveral"),
             at=(192, 100), what="a caption band under a rocket at dusk"),
    TextTile("cat-label", "chelsea", "sign", "FreeSansBold.ttf", 28, ("Chelsea", "the cat"), (70, 35, 10), _CREAM,
             at=(0, 0), what="a cream name plate over a tabby cat's fur"),
    TextTile("pagoda-caption", "china", "caption", "NotoSerif-Regular.ttf", 18, ("Pagoda above", "the lake, 2011"),
             at=(64, 40), what="a caption band under a pagoda roof"),
    TextTile("garage-sign", "motorcycle", "sign", "DejaVuSansCondensed-Bold.ttf", 24, ("NO SMOKING", "IN GARAGE"),
             BLACK, _YELLOW, at=(330, 0), what="a yellow sign on garage shelves"),
    TextTile("hopper-label", "hopper", "sign", "LiberationSerif-Bold.ttf", 24, ("Rear Admiral", "G. M. Hopper"),
             WHITE, BLACK, at=(128, 150), what="a black name plate over a portrait"),
    TextTile("dahlia-caption", "flower", "caption", "FreeSerif.ttf", 26, ("Dahlia", "No. 12"), at=(192, 85),
             what="a caption band under a dahlia"),
    TextTile("sky-coordinates", "hubble", "caption", "DejaVuSansMono-Bold.ttf", 18, ("RA 3h 32m 39s", "Dec -27 47"),
             at=(0, 300), align="left", what="a caption band of coordinates under a deep-space field"),
    TextTile("nasa-label", "astronaut", "caption", "NotoSans-Bold.ttf", 48, ("NASA",), at=(256, 0),
             what="a caption band of large letters under a space shuttle model"),
    TextTile("table-reserved", "coffee", "sign", "LiberationMono-Bold.ttf", 22, ("TABLE 7", "RESERVED"), BLACK,
             WHITE, at=(0, 144), what="a white card on a wooden table"),
    TextTile("staff-only", "rocket", "sign", "FreeSans.ttf", 16, ("Authorised staff", "only beyond", "this point"),
             BLACK, WHITE, at=(0, 0), what="a white notice before a lattice tower"),
    TextTile("fundus-caption", "retina", "caption", "DejaVuSans.ttf", 12, ("Left eye, fundus", "exposure 1/30 s"),
             at=(300, 300), what="a small caption band under a fundus photograph"),
    TextTile("park-sign", "china", "sign", "NotoSerif-Bold.ttf", 40, ("PARK",), WHITE, _RED, at=(0, 171),
             what="a red sign over treetops"),
    TextTile("control-wood", "coffee", at=(20, 140), what="worn wood grain beside a red saucer, with no text"),
    TextTile("control-engine", "motorcycle", at=(290, 210), what="a chrome motorcycle engine, with no text"),
    TextTile("control-ribbons", "hopper", at=(250, 330), what="service ribbons on a navy jacket, with no text"),
    TextTile("control-tower", "rocket", at=(20, 10), what="a lattice tower against the sky, with no text"),
)


def font_path(name: str) -> Path:
    """The font file ``name`` in one of :data:`FONT_PACKAGES`' folders; ManifestError naming the packages."""
    for _, folder in FONT_PACKAGES.values():
        if (FONT_DIR / folder / name).is_file():
            return FONT_DIR / folder / name
    raise ManifestError(f"font {name} not found under {FONT_DIR}",
                        "apt-get install " + " ".join(FONT_PACKAGES))


def font_package(name: str) -> str:
    """The Debian package whose folder holds the font file ``name``."""
    folder = font_path(name).parent.name
    return next(p for p, (_, f) in FONT_PACKAGES.items() if f == folder)


def _ground(tile: TextTile, photos: dict[str, np.ndarray]) -> np.ndarray:
    if isinstance(tile.ground, str):
        if tile.ground not in photos:
            photos[tile.ground] = read_source(SOURCES[tile.ground])
        x, y = tile.at
        crop = photos[tile.ground][y:y + TILE, x:x + TILE]
        if crop.shape != (TILE, TILE, 3):
            raise ManifestError(f"tile {tile.id!r}: crop at {tile.at} leaves the {tile.ground} photograph")
        return crop.copy()
    colours = np.asarray(tile.ground, np.float64).reshape(-1, 3)  # one colour, or top and bottom colours
    t = (np.arange(TILE, dtype=np.float64) / (TILE - 1))[:, None, None]
    mix = colours[0] * (1 - t) + colours[-1] * t
    return np.broadcast_to(np.floor(mix + 0.5), (TILE, TILE, 3)).astype(np.uint8).copy()


def render_text_tile(tile: TextTile, photos: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The tile as uint8 (TILE, TILE, 3): ground, then the style's plate or band, then the text lines (baselines
    ``1.3 * size`` apart, the block centred; ``align`` left puts lines at a common left edge)."""
    image = _ground(tile, {} if photos is None else photos)
    if not tile.lines:
        return image
    font = ImageFont.truetype(str(font_path(tile.font)), tile.size)
    step = round(1.3 * tile.size)
    boxes = [font.getbbox(line, anchor="ls") for line in tile.lines]
    width = max(b[2] - b[0] for b in boxes)
    ascent, descent = font.getmetrics()
    height = step * (len(tile.lines) - 1) + ascent + descent
    left, top = (TILE - width) // 2, (TILE - height) // 2
    if tile.style == "caption":  # a darkened band the width of the tile, the text block inside it
        pad = tile.size // 2
        top = TILE - height - 2 * pad - 8
        band = image[top - pad:top + height + pad].astype(np.int64)
        image[top - pad:top + height + pad] = ((band * 3 + 5) // 10).astype(np.uint8)
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    if tile.style == "sign":
        pad = max(6, tile.size)
        draw.rounded_rectangle((left - pad, top - pad, left + width + pad, top + height + pad),
                               radius=pad // 2, fill=tile.plate)
    for k, (line, box) in enumerate(zip(tile.lines, boxes, strict=True)):
        x = left - box[0] if tile.align == "left" else (TILE - (box[2] - box[0])) // 2 - box[0]
        draw.text((x, top + ascent + k * step), line, font=font, fill=tile.colour, anchor="ls")
    return np.asarray(canvas, dtype=np.uint8)


def _debian_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "absent"


def installed_versions() -> dict[str, str]:
    """The versions of :data:`MADE_WITH`'s packages here ('absent' when missing)."""
    found = {}
    for name in MADE_WITH:
        if name in FONT_PACKAGES:
            found[name] = _debian_version(name)
        elif name == "freetype2":
            found[name] = str(features.version("freetype2"))
        else:
            try:
                found[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                found[name] = "absent"
    return found


def describe(tile: TextTile) -> tuple[str, str, str]:
    """(caption, licence, source) of a tile's manifest row."""
    if not tile.lines:
        src = SOURCES[str(tile.ground)]
        return (f"{tile.what[0].upper()}{tile.what[1:]}.", src.licence,
                f"{src.source}; crop x={tile.at[0]} y={tile.at[1]} size={TILE}")
    said = " / ".join(tile.lines)
    package = font_package(tile.font)
    font = f"{Path(tile.font).stem} {tile.size} px, {tile.style} ({package}: {FONT_PACKAGES[package][0]})"
    caption = f"{tile.what[0].upper()}{tile.what[1:]} reading '{said}'."
    if isinstance(tile.ground, str):
        src = SOURCES[tile.ground]
        return (caption, f"{src.licence}; text added by qa",
                f"{src.source}; crop x={tile.at[0]} y={tile.at[1]} size={TILE}; text: {font}")
    return caption, "CC0 (drawn by qa's generator)", f"qa.refset.text_sources; text: {font}"


def render_all() -> dict[str, np.ndarray]:
    """Every tile id -> uint8 (TILE, TILE, 3)."""
    photos: dict[str, np.ndarray] = {}
    return {t.id: render_text_tile(t, photos) for t in TILES}


def write_text_set(out: Path = DEFAULT_OUT) -> Path:
    """Write every tile PNG, ``manifest.csv`` (with the ``text`` column) and ``README.md``; the manifest path."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for tile_id, pixels in render_all().items():
        tile = next(t for t in TILES if t.id == tile_id)
        data = encode_png(pixels)
        (out / f"{tile_id}.png").write_bytes(data)
        caption, licence, source = describe(tile)
        rows.append({"id": tile_id, "file": f"{tile_id}.png", "caption": caption, "licence": licence,
                     "source": source, "sha256": sha256_bytes(data), "text": tile.text})
    (out / "README.md").write_text(readme_text(), encoding="utf-8")
    return write_manifest(out, rows, text_set=True)


def check_text_set(folder: Path = DEFAULT_OUT) -> list[str]:
    """Differences between the tiles in ``folder`` and a fresh render (empty: identical)."""
    return compare_rendered(folder, render_all())


def readme_text() -> str:
    """The provenance README of the folder."""
    n_text = sum(bool(t.lines) for t in TILES)
    lines = [
        "# reference_sets/text", "",
        f"{len(TILES)} RGB PNG tiles of {TILE}x{TILE}: {n_text} with words and lines of text at 8-48 px (em size) in "
        "several fonts on flat and photographic grounds (signs, labels, captions), and "
        f"{len(TILES) - n_text} photographs without text (controls for invented text). Generated by "
        "`python -m qa.refset.text_sources` (do not edit by hand; `--check` compares these files with a fresh "
        "render). The manifest's `text` column holds the true strings (one line of the image per line of the "
        "cell), which makes this folder a text set: the text rules of the release policies are required on it.",
        "",
        "Licences: flat-ground tiles are drawn by qa (CC0). Photographic grounds are 256x256 crops of the "
        "photographs of `reference_sets/default` (licences in each row; the CC BY 2.0 china and flower photos "
        "require attribution, given in the rows). The text is rendered with fonts of Debian packages; the fonts "
        "are not shipped, and rendered text is not font software:", "",
        "| package | licence of the font software |", "|---|---|",
        *[f"| {p} | {lic} |" for p, (lic, _) in FONT_PACKAGES.items()], "",
        "Made with " + ", ".join(f"{k} {v}" for k, v in MADE_WITH.items()) + ".", "",
        "| tile | ground | style | font | size (px) | text |", "|---|---|---|---|---|---|",
    ]
    for t in TILES:
        ground = t.ground if isinstance(t.ground, str) else "flat"
        lines.append(f"| {t.id} | {ground} | {t.style if t.lines else '-'} | {Path(t.font).stem or '-'} | "
                     f"{t.size or '-'} | {' / '.join(t.lines) or '(none)'} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write (default) or ``--check`` the text set. Exit 0 ok, 1 differences, 2 error."""
    parser = argparse.ArgumentParser(prog="python -m qa.refset.text_sources", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder (default %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with a fresh render, write nothing")
    args = parser.parse_args(argv)
    return write_or_check(args.check, len(TILES), installed_versions(), MADE_WITH,
                          lambda: check_text_set(args.out), lambda: write_text_set(args.out))

if __name__ == "__main__":
    raise SystemExit(main())
