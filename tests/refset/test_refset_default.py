"""The shipped reference set ``reference_sets/default``: complete, verified, varied, and reproducible."""

from __future__ import annotations

import csv
import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qa.errors import ManifestError
from qa.imageio import load_image
from qa.refset import default_sources as ds
from qa.refset.manifest import COLUMNS, ReferenceSet, load_reference_set

DEFAULT = Path(__file__).resolve().parents[2] / "reference_sets" / "default"


@pytest.fixture(scope="module")
def refset() -> ReferenceSet:
    return load_reference_set(DEFAULT)


@pytest.fixture(scope="module")
def pixels(refset: ReferenceSet) -> dict[str, np.ndarray]:
    return {item.id: np.asarray(Image.open(item.path), dtype=np.uint8) for item in refset.good}


def test_loads_with_at_least_24_good_items_and_no_bad(refset: ReferenceSet) -> None:
    assert len(refset.good) >= 24
    assert refset.bad == []


def test_manifest_columns_and_hashes_verify_independently(refset: ReferenceSet) -> None:
    with open(DEFAULT / "manifest.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    assert len(rows) == len(refset.items)
    for row in rows:
        assert hashlib.sha256((DEFAULT / row["file"]).read_bytes()).hexdigest() == row["sha256"]
    pngs = {p.name for p in DEFAULT.glob("*.png")}
    assert pngs == {row["file"] for row in rows}  # no stray or unlisted images


def test_captions_are_present_distinct_and_sentences(refset: ReferenceSet) -> None:
    captions = [item.caption for item in refset.items]
    assert all(c.strip() for c in captions)
    assert len(set(captions)) == len(captions)
    for c in captions:
        assert c[0].isupper() and c.endswith(".") and 6 <= len(c.split()) <= 40, c


def test_every_item_has_licence_and_source(refset: ReferenceSet) -> None:
    for item in refset.items:
        assert item.licence and item.licence != "unstated", item.id
        assert item.source and "crop x=" in item.source


def test_tiles_are_256_rgb_and_load_without_conversion(refset: ReferenceSet) -> None:
    for item in refset.good:
        loaded = load_image(item.path)
        assert loaded.pixels.shape == (256, 256, 3) and loaded.mode == "RGB" and loaded.notes == ()


def test_no_two_tiles_identical_or_near_duplicates(pixels: dict[str, np.ndarray]) -> None:
    digests = {hashlib.sha256(p.tobytes()).hexdigest() for p in pixels.values()}
    assert len(digests) == len(pixels)
    for (a, pa), (b, pb) in itertools.combinations(pixels.items(), 2):
        mad = np.abs(pa.astype(np.int16) - pb.astype(np.int16)).mean()
        assert mad > 10.0, f"{a} and {b} differ by only {mad:.1f} grey levels on average"


def test_tiles_are_not_flat(pixels: dict[str, np.ndarray]) -> None:
    for name, p in pixels.items():
        gray = p.astype(np.float64).mean(axis=2)
        assert gray.std() > 10.0, f"{name} is nearly flat (std {gray.std():.1f})"
        # at least a tenth of 8x8 blocks carry local detail (std > 2 grey levels)
        blocks = gray.reshape(32, 8, 32, 8).std(axis=(1, 3))
        assert (blocks > 2.0).mean() > 0.1, name


def test_manifest_matches_the_generator_table(refset: ReferenceSet) -> None:
    table = {t.id: t for t in ds.TILES}
    assert [i.id for i in refset.items] == list(table)
    for item in refset.items:
        tile = table[item.id]
        assert item.caption == tile.caption and item.licence == ds.SOURCES[tile.source].licence
    assert (DEFAULT / "README.md").read_text(encoding="utf-8") == ds.readme_text()


def _sources_available() -> bool:
    try:
        return all(s.path().is_file() for s in ds.SOURCES.values())
    except ManifestError:  # a missing package makes the regeneration tests skip, not fail
        return False


@pytest.mark.skipif(not _sources_available(), reason="scikit-image, scikit-learn or matplotlib not installed")
def test_fresh_render_equals_the_shipped_pixels() -> None:
    assert ds.check_default(DEFAULT) == []


@pytest.mark.skipif(not _sources_available(), reason="scikit-image, scikit-learn or matplotlib not installed")
def test_block_mean_tiles_match_an_independent_float_mean() -> None:
    for tile in (t for t in ds.TILES if t.scale > 1):
        src = ds.read_source(ds.SOURCES[tile.source])
        side = 256 * tile.scale
        window = src[tile.y:tile.y + side, tile.x:tile.x + side].astype(np.float64)
        mean = window.reshape(256, tile.scale, 256, tile.scale, 3).mean(axis=(1, 3))
        np.testing.assert_array_equal(ds.render_tile(tile, src), np.floor(mean + 0.5).astype(np.uint8))


@pytest.mark.skipif(not _sources_available() or ds.installed_versions() != ds.MADE_WITH,
                    reason="byte-exact regeneration needs the versions the set was made with")
def test_regeneration_is_byte_exact(tmp_path: Path) -> None:
    ds.write_default(tmp_path)
    for path in sorted(DEFAULT.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
