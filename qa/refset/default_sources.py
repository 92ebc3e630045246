"""Regenerate ``reference_sets/default/`` from colour photographs that installed packages ship.

Run ``python -m qa.refset.default_sources`` to (re)write the folder, or add ``--check`` to compare the shipped
tiles with what the installed packages give, pixel by pixel, without writing anything.

Every tile is a 256 x 256 crop of a source photograph (``scale`` 1), or of a ``256*scale`` square window reduced
by a ``scale`` x ``scale`` block mean computed in numpy (no library resampler, so the arithmetic is exact and
version independent). Tiles are written as 8-bit RGB PNG.

Determinism: the source files are checked against the sha256 recorded here before use (a different package
version that changed a photo is refused, not silently used). PNG sources decode identically everywhere; JPEG
sources (rocket, hubble, retina, china, flower, grace_hopper) decode through Pillow's libjpeg, whose output
can differ by a grey level across libjpeg builds; the PNG bytes also depend on zlib. The shipped folder was made
with the versions in :data:`MADE_WITH`; ``--check`` reports the largest pixel difference against them.

No image here may come from the data our models are trained on (e.g. the Debian ``opencv-doc`` samples).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from qa.errors import ManifestError
from qa.hashing import sha256_bytes, sha256_file
from qa.refset.manifest import write_manifest

TILE = 256
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "reference_sets" / "default"
#: Versions that produced the shipped folder (package, version).
MADE_WITH = {
    "scikit-image": "0.26.0",
    "scikit-learn": "1.9.1",
    "matplotlib": "3.11.2",
    "pillow": "13.0.0",
    "numpy": "2.4.6",
}


@dataclass(frozen=True)
class Source:
    """A photograph inside an installed package: ``package`` (import name) + ``relpath`` inside it."""

    key: str
    package: str
    relpath: str
    sha256: str
    licence: str
    source: str

    def path(self) -> Path:
        """Absolute path of the file in the installed package (without importing the package)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ManifestError(f"source {self.key!r}: package {self.package!r} is not installed",
                                f"install it (the shipped folder used {_dist(self.package)} "
                                f"{MADE_WITH.get(_dist(self.package), '?')})")
        return Path(list(spec.submodule_search_locations)[0]) / self.relpath


@dataclass(frozen=True)
class Tile:
    """One tile: top-left corner (``x``, ``y``) in source pixels, window side ``TILE * scale``."""

    id: str
    source: str
    x: int
    y: int
    caption: str
    scale: int = 1


def _dist(package: str) -> str:
    return {"skimage": "scikit-image", "sklearn": "scikit-learn"}.get(package, package)


_SKI = "scikit-image (skimage/data/{f}); "
SOURCES: dict[str, Source] = {s.key: s for s in (
    Source("astronaut", "skimage", "data/astronaut.png",
           "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
           "public domain (NASA; no known copyright restrictions)",
           _SKI.format(f="astronaut.png") + "NASA Great Images, https://flic.kr/p/r9qvLn (astronaut Eileen Collins)"),
    Source("coffee", "skimage", "data/coffee.png",
           "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
           "CC0 (photographer Rachel Michetti)",
           _SKI.format(f="coffee.png") + "courtesy of Pikolo Espresso Bar"),
    Source("chelsea", "skimage", "data/chelsea.png",
           "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
           "CC0 (photographer Stefan van der Walt)",
           _SKI.format(f="chelsea.png") + "Chelsea the cat"),
    Source("rocket", "skimage", "data/rocket.jpg",
           "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
           "public domain (released by SpaceX)",
           _SKI.format(f="rocket.jpg") + "SpaceX, https://www.flickr.com/photos/spacexphotos/16511594820/ "
           "(Falcon 9 with DSCOVR)"),
    Source("motorcycle", "skimage", "data/motorcycle_left.png",
           "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
           "unstated by the dataset authors (redistributed in scikit-image, BSD-3-Clause package)",
           _SKI.format(f="motorcycle_left.png") + "Middlebury 2014 stereo benchmark 'Motorcycle', left view, "
           "4x downsampled; Scharstein et al., GCPR 2014"),
    Source("hubble", "skimage", "data/hubble_deep_field.jpg",
           "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
           "public domain (NASA)",
           _SKI.format(f="hubble_deep_field.jpg") + "Hubble eXtreme Deep Field, "
           "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/"),
    Source("retina", "skimage", "data/retina.jpg",
           "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
           "CC0 1.0 (Mikael Häggström)",
           _SKI.format(f="retina.jpg") + "https://commons.wikimedia.org/wiki/"
           "File:Fundus_photograph_of_normal_left_eye.jpg"),
    Source("china", "sklearn", "datasets/images/china.jpg",
           "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
           "CC BY 2.0 (danielbuechele on Flickr)",
           "scikit-learn (sklearn/datasets/images/china.jpg); "
           "https://www.flickr.com/photos/danielbuechele/6061409035/"),
    Source("flower", "sklearn", "datasets/images/flower.jpg",
           "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
           "CC BY 2.0 (vultilion on Flickr)",
           "scikit-learn (sklearn/datasets/images/flower.jpg); "
           "https://www.flickr.com/photos/vultilion/6056698931/ (scikit-learn's README credits danielbuechele)"),
    Source("hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
           "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
           "public domain (US Navy portrait of Grace Hopper)",
           "matplotlib (mpl-data/sample_data/grace_hopper.jpg); added as a public-domain image in "
           "https://github.com/matplotlib/matplotlib/pull/1599"),
)}

TILES: tuple[Tile, ...] = (
    Tile("astronaut-face", "astronaut", 100, 0,
         "A smiling woman with short wavy brown hair, wearing the neck ring of an orange spacesuit, against a "
         "mottled grey backdrop."),
    Tile("astronaut-patch", "astronaut", 110, 256,
         "The chest of an orange spacesuit with a round purple mission patch, a small blue name tag, white "
         "cords with metal buckles and the edge of a black helmet."),
    Tile("astronaut-shuttle", "astronaut", 256, 0,
         "A white space shuttle model with an orange external tank and two white boosters against a grey "
         "backdrop, beside the edge of a woman's brown hair."),
    Tile("astronaut-helmet", "astronaut", 256, 256,
         "A glossy black space helmet with white trim and a bright window reflection, held in front of an "
         "orange spacesuit with a blue name tag."),
    Tile("astronaut-whole", "astronaut", 0, 0,
         "Portrait of a smiling astronaut in an orange spacesuit holding a black helmet, with a US flag on the"
         " left and a space shuttle model on the right.", scale=2),
    Tile("coffee-crema", "coffee", 170, 0,
         "A red espresso cup with a white rim seen from above, filled with light brown crema, with a spoon on "
         "its saucer and wooden table around it."),
    Tile("coffee-spoon", "coffee", 300, 144,
         "A shiny metal teaspoon lying on a red saucer beside the base of an espresso cup, on a weathered "
         "wooden table."),
    Tile("coffee-wood", "coffee", 0, 144,
         "Scratched, worn wood grain on a table beside the glossy rim of a red saucer and the handle of a red "
         "cup."),
    Tile("chelsea-left-eye", "chelsea", 0, 0,
         "Close-up of a tabby cat's face showing one yellow-green eye, striped brown fur, a pink ear edge and "
         "white whiskers."),
    Tile("chelsea-nose", "chelsea", 195, 44,
         "A tabby cat's yellow-green eye, pink nose and white whiskers, with a blurred pale background on the "
         "right."),
    Tile("rocket-nose", "rocket", 192, 100,
         "A white rocket with a dark logo on its nose cone standing upright at dusk against a deep blue sky, "
         "between two lattice towers."),
    Tile("rocket-pad-lights", "rocket", 320, 171,
         "Floodlights flaring into starbursts at the foot of a lattice lightning tower under a dark blue "
         "evening sky, with the rocket's edge at the left."),
    Tile("rocket-tower", "rocket", 0, 0,
         "A tall steel lattice tower rising diagonally into a clear dark blue sky, with a thinner mast in the "
         "distance."),
    Tile("motorcycle-engine", "motorcycle", 300, 200,
         "The finned chrome engine, exhaust pipe and side stand of a red Yamaha motorcycle standing on a "
         "concrete garage floor."),
    Tile("motorcycle-front-wheel", "motorcycle", 485, 244,
         "The front wheel of a red motorcycle with a black tyre, spoked alloy rim, disc brake and red mudguard"
         " on a concrete floor."),
    Tile("motorcycle-shelves", "motorcycle", 330, 0,
         "Metal garage shelves with boxes, bottles and a toolbox behind the round headlight, mirror and red "
         "fuel tank of a motorcycle."),
    Tile("motorcycle-seat", "motorcycle", 100, 150,
         "The black ribbed seat, red rear fender and rear wheel of a motorcycle parked in front of wooden "
         "garage walls."),
    Tile("hubble-spiral", "hubble", 0, 300,
         "A deep-space field of faint coloured galaxies on black, with a bright face-on spiral galaxy at its "
         "centre."),
    Tile("hubble-star", "hubble", 620, 380,
         "A black sky of tiny galaxies with a glowing orange elliptical galaxy and a bright star with four "
         "diffraction spikes."),
    Tile("hubble-red-galaxy", "hubble", 250, 20,
         "Scattered galaxies on a black background, with a glowing red galaxy at the left and several bluish "
         "spirals near the top."),
    Tile("retina-optic-disc", "retina", 0, 390,
         "A fundus photograph of a human eye, with red blood vessels branching out of the bright yellow optic "
         "disc and a black border at the left.", scale=2),
    Tile("retina-vessels", "retina", 300, 40,
         "Thin red retinal blood vessels branching across an orange fundus, with a black corner where the "
         "photograph's circular edge ends.", scale=2),
    Tile("china-pagoda-roof", "china", 64, 40,
         "The upper tiers of a Chinese pagoda with orange glazed tiles, green eaves and red columns against a "
         "pale blue sky."),
    Tile("china-lake", "china", 330, 150,
         "A hazy lake dotted with small boats and a wooded island, seen from a hillside above dense green "
         "trees."),
    Tile("china-trees", "china", 0, 171,
         "The lower tiers of a red and green Chinese pagoda above leafy treetops, with a lake and distant "
         "buildings behind."),
    Tile("flower-centre", "flower", 192, 85,
         "A peach-coloured dahlia in full bloom, its cupped petals spiralling into a tight orange centre."),
    Tile("flower-second-bloom", "flower", 256, 171,
         "The lower half of an orange dahlia and a second, smaller bloom below it, against a blurred dark teal"
         " background."),
    Tile("hopper-face", "hopper", 128, 150,
         "An elderly woman with deeply lined skin, grey hair and large tortoiseshell glasses, in a dark naval "
         "uniform with a white collar."),
    Tile("hopper-cap", "hopper", 128, 0,
         "An embroidered gold eagle insignia on a dark navy cap above a pair of large glasses, with a starred "
         "flag behind."),
    Tile("hopper-name-tag", "hopper", 60, 344,
         "A dark navy uniform jacket with a silver name tag reading 'COMO HOPPER', a black tie, a white collar"
         " and a gold button."),
    Tile("hopper-ribbons", "hopper", 256, 344,
         "Rows of colourful service ribbons pinned to a dark navy uniform jacket, with a white collar and "
         "black tie at the left."),
    Tile("hopper-flag", "hopper", 0, 0,
         "White stars on the blue field of a US flag and a gold fringe cord, beside the dark cap, glasses and "
         "eye of an elderly woman."),
)


def read_source(src: Source, verify: bool = True) -> np.ndarray:
    """The source photograph as uint8 RGB (H, W, 3); refuses a file whose sha256 differs from the record."""
    path = src.path()
    if not path.is_file():
        raise ManifestError(f"source {src.key!r}: {path} not found", "reinstall the package that ships it")
    if verify and (actual := sha256_file(path)) != src.sha256:
        raise ManifestError(f"source {src.key!r}: {path} has sha256 {actual[:12]}..., expected {src.sha256[:12]}...",
                            "the package version changed the photo; pass --any-source to use it anyway")
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def render_tile(tile: Tile, image: np.ndarray) -> np.ndarray:
    """Cut ``tile`` from ``image`` (uint8 (H, W, 3)); returns uint8 (TILE, TILE, 3)."""
    side = TILE * tile.scale
    h, w = image.shape[:2]
    if tile.x < 0 or tile.y < 0 or tile.x + side > w or tile.y + side > h:
        raise ManifestError(f"tile {tile.id!r}: window {tile.x},{tile.y} + {side} outside the {w}x{h} source")
    window = image[tile.y:tile.y + side, tile.x:tile.x + side].astype(np.int64)
    if tile.scale == 1:
        return window.astype(np.uint8)
    s = tile.scale
    sums = window.reshape(TILE, s, TILE, s, 3).sum(axis=(1, 3))
    # round half up in integer arithmetic: exact and identical on every platform
    return ((2 * sums + s * s) // (2 * s * s)).astype(np.uint8)


def encode_png(pixels: np.ndarray) -> bytes:
    """8-bit RGB PNG bytes of uint8 (H, W, 3) pixels (no metadata, so no timestamps)."""
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def render_all(verify_sources: bool = True) -> dict[str, np.ndarray]:
    """Every tile id -> uint8 (TILE, TILE, 3) pixels."""
    images: dict[str, np.ndarray] = {}
    out: dict[str, np.ndarray] = {}
    for tile in TILES:
        if tile.source not in images:
            images[tile.source] = read_source(SOURCES[tile.source], verify_sources)
        out[tile.id] = render_tile(tile, images[tile.source])
    return out


def installed_versions() -> dict[str, str]:
    """Installed versions of the packages in :data:`MADE_WITH` ('absent' when missing)."""
    found = {}
    for dist in MADE_WITH:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "absent"
    return found


def write_default(out: Path = DEFAULT_OUT, verify_sources: bool = True) -> Path:
    """Write every tile PNG, ``manifest.csv`` and ``README.md`` into ``out``; returns the manifest path."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    tiles = render_all(verify_sources)
    for tile in TILES:
        data = encode_png(tiles[tile.id])
        name = f"{tile.id}.png"
        (out / name).write_bytes(data)
        src = SOURCES[tile.source]
        rows.append({"id": tile.id, "file": name, "caption": tile.caption, "licence": src.licence,
                     "source": f"{src.source}; crop x={tile.x} y={tile.y} size={TILE * tile.scale}"
                     + (f" reduced {tile.scale}x by block mean" if tile.scale > 1 else ""),
                     "sha256": sha256_bytes(data)})
    (out / "README.md").write_text(readme_text(), encoding="utf-8")
    return write_manifest(out, rows)


def check_default(folder: Path = DEFAULT_OUT, verify_sources: bool = True) -> list[str]:
    """Differences between the tiles in ``folder`` and those the installed packages give (empty: identical)."""
    return compare_rendered(folder, render_all(verify_sources))


def compare_rendered(folder: Path, tiles: dict[str, np.ndarray]) -> list[str]:
    """Differences between ``folder``/ID.png and each fresh render ``tiles[ID]`` (empty: identical)."""
    problems = []
    for tile_id, pixels in tiles.items():
        path = folder / f"{tile_id}.png"
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        with Image.open(path) as img:
            shipped = np.asarray(img.convert("RGB"), dtype=np.int16)
        diff = int(np.abs(shipped - pixels.astype(np.int16)).max())
        if diff:
            problems.append(f"{path}: pixels differ by up to {diff} grey levels from a fresh render")
    return problems


def readme_text() -> str:
    """The provenance README of the folder."""
    lines = [
        "# reference_sets/default",
        "",
        f"{len(TILES)} photographs cut into {TILE}x{TILE} RGB PNG tiles from colour photos that installed Python "
        "packages ship. Generated by `python -m qa.refset.default_sources` (do not edit by hand; "
        "`python -m qa.refset.default_sources --check` compares these files with a fresh render).",
        "",
        "Each tile is a crop of the source at its own resolution, or (scale 2) a 512x512 window reduced by a 2x2 "
        "block mean with round-half-up integer arithmetic. `manifest.csv` holds id, file, caption, licence, "
        "source (with the crop window) and the sha256 of each PNG file. None of these photographs is in the "
        "training data of qa's embedded models (those use the Debian opencv-doc samples listed in "
        "`qa/zoo/data.py`).",
        "",
        "Licences: the tiles are crops (and, where the window is 512, 2x reductions) of the photographs below; "
        "that is the only change made. The two CC BY 2.0 photographs (china, flower) require attribution, given "
        "in the table and in each manifest row. The Middlebury motorcycle images carry no licence statement "
        "from their authors; scikit-image redistributes them. A user who needs an explicit licence for every "
        "item can drop the four `motorcycle-*` rows (28 items remain).",
        "",
        "Made with " + ", ".join(f"{k} {v}" for k, v in MADE_WITH.items()) + ".",
        "",
        "| source | file in package | sha256 (source file) | licence | origin |",
        "|---|---|---|---|---|",
    ]
    for src in SOURCES.values():
        lines.append(f"| {src.key} | {_dist(src.package)}: `{src.relpath}` | `{src.sha256[:16]}...` | "
                     f"{src.licence} | {src.source.split('; ', 1)[-1]} |")
    lines += ["", "| tile | source | x | y | window | caption |", "|---|---|---|---|---|---|"]
    for t in TILES:
        lines.append(f"| {t.id} | {t.source} | {t.x} | {t.y} | {TILE * t.scale} | {t.caption} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write (default) or ``--check`` the default reference set. Exit 0 ok, 1 differences, 2 error."""
    parser = argparse.ArgumentParser(prog="python -m qa.refset.default_sources", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder (default %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--any-source", action="store_true", help="use source files whose sha256 differs")
    args = parser.parse_args(argv)
    return write_or_check(args.check, len(TILES), installed_versions(), MADE_WITH,
                          lambda: check_default(args.out, not args.any_source),
                          lambda: write_default(args.out, not args.any_source))


def write_or_check(check: bool, n: int, installed: dict[str, str], made_with: dict[str, str],
                   compare: Callable[[], list[str]], write: Callable[[], Path]) -> int:
    """The body of a generator's CLI: note differing versions, then ``compare`` (print the differences; exit 1
    if any) or ``write`` (exit 0); exit 2 on a ManifestError."""
    if installed != made_with:
        print(f"note: installed {installed}; the shipped folder was made with {made_with}", file=sys.stderr)
    try:
        if check:
            problems = compare()
            for p in problems:
                print(p)
            print(f"{n - len(problems)}/{n} tiles identical to a fresh render")
            return 1 if problems else 0
        manifest = write()
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} tiles and {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
