"""``build_reference_set``: bad files are reported by name and skipped, good ones make a loadable set."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qa.errors import ManifestError
from qa.refset.build import build_reference_set, read_captions
from qa.refset.manifest import load_reference_set
from tests.refset.bad_images import BAD_CASES, GOOD_CASES, make_image_zoo, write_rgb_png, write_text_as_png


@pytest.fixture()
def zoo(tmp_path: Path) -> tuple[Path, dict[str, Path], dict[str, Path]]:
    folder = tmp_path / "images"
    good, bad = make_image_zoo(folder)
    (folder / "readme.txt").write_text("not an image suffix: ignored", encoding="utf-8")
    return folder, good, bad


def test_bad_files_are_named_and_skipped_good_ones_kept(zoo: tuple[Path, dict, dict]) -> None:
    folder, good, bad = zoo
    result = build_reference_set(folder)
    assert len(result.problems) == len(BAD_CASES)
    for name, path in bad.items():
        hits = [p for p in result.problems if str(path) in p]
        assert len(hits) == 1, (name, result.problems)
        assert BAD_CASES[name][2].lower() in hits[0].lower()
    assert sorted(row["file"] for row in result.items) == sorted(p.name for p in good.values())
    assert not result.ok
    # converted (16-bit, RGBA, gray, palette) files are good, with notes saying what was done
    assert "alpha flattened onto white" in result.notes["rgba.png"]
    assert any("65535" in n for n in result.notes["gray16.png"])
    assert "grayscale replicated to RGB" in result.notes["gray.png"]
    assert "palette expanded" in result.notes["palette.png"]
    # the manifest written in place loads, every item good, hashes equal to the file bytes
    refset = load_reference_set(folder)
    assert len(refset.good) == len(GOOD_CASES) and not refset.bad
    for item in refset.items:
        assert item.sha256 == hashlib.sha256(item.path.read_bytes()).hexdigest()
        assert item.licence == "unstated" and item.source == "unstated" and item.caption == ""
    assert f"{len(GOOD_CASES)} image(s) without a caption" in result.warnings[0]
    assert "bad:" in result.summary() and str(bad["bomb_30000"]) in result.summary()


def test_captions_from_csv_tsv_and_json(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    (folder / "sub").mkdir(parents=True)
    write_rgb_png(folder / "a.png", seed=1)
    write_rgb_png(folder / "sub" / "b.png", seed=2)
    write_rgb_png(folder / "sub" / "c.png", seed=3)
    csv_file = tmp_path / "caps.csv"
    csv_file.write_text('file,caption,licence\na.png,"A red, green thing.",CC0\nb.png,  A  bee.\n'
                        "ghost.png,Nobody.,\n", encoding="utf-8")
    result = build_reference_set(folder, captions=csv_file, licence="mine", source="lab camera")
    rows = {r["file"]: r for r in result.items}
    assert rows["a.png"]["caption"] == "A red, green thing." and rows["a.png"]["licence"] == "CC0"
    assert rows["sub/b.png"]["caption"] == "A bee." and rows["sub/b.png"]["licence"] == "mine"  # bare-name match
    assert rows["sub/c.png"]["caption"] == "" and rows["sub/c.png"]["source"] == "lab camera"
    assert any("ghost.png" in w for w in result.warnings)
    assert any("sub/c.png" in w and "without a caption" in w for w in result.warnings)
    assert {r["id"] for r in result.items} == {"a", "sub/b", "sub/c"}

    tsv_file = tmp_path / "caps.tsv"
    tsv_file.write_text("a.png\tTab caption, with comma.\nsub/c.png\tA c.\n", encoding="utf-8")
    rows = {r["file"]: r for r in build_reference_set(folder, captions=tsv_file).items}
    assert rows["a.png"]["caption"] == "Tab caption, with comma." and rows["sub/c.png"]["caption"] == "A c."

    json_file = tmp_path / "caps.json"
    json_file.write_text(json.dumps({"a.png": "J a.", "sub/b.png": {"caption": "J b.", "source": "S"}}),
                         encoding="utf-8")
    rows = {r["file"]: r for r in build_reference_set(folder, captions=json_file).items}
    assert rows["a.png"]["caption"] == "J a." and rows["sub/b.png"]["source"] == "S"
    assert load_reference_set(folder).items[0].caption == "J a."


def test_bad_caption_files_are_refused_with_their_name(tmp_path: Path) -> None:
    dup = tmp_path / "dup.csv"
    dup.write_text("a.png,One.\na.png,Two.\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"dup\.csv.*listed twice"):
        read_captions(dup)
    wide = tmp_path / "wide.csv"
    wide.write_text("a.png,One, two, three.\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"wide\.csv:1: expected 2 column"):
        read_captions(wide)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ManifestError, match="invalid JSON"):
        read_captions(broken)
    with pytest.raises(ManifestError, match="cannot read captions"):
        read_captions(tmp_path / "absent.csv")


def test_rebuild_keeps_existing_captions(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    write_rgb_png(folder / "a.png")
    caps = tmp_path / "c.csv"
    caps.write_text("a.png,Kept caption.\n", encoding="utf-8")
    build_reference_set(folder, captions=caps)
    write_rgb_png(folder / "new.png", seed=9)
    result = build_reference_set(folder)
    rows = {r["file"]: r["caption"] for r in result.items}
    assert rows == {"a.png": "Kept caption.", "new.png": ""}


def test_out_copies_good_files_byte_exact(zoo: tuple[Path, dict, dict], tmp_path: Path) -> None:
    folder, good, bad = zoo
    out = tmp_path / "out"
    result = build_reference_set(folder, out=out)
    assert result.root == out and result.manifest == out / "manifest.csv"
    assert not (folder / "manifest.csv").exists()
    for path in good.values():
        assert (out / path.name).read_bytes() == path.read_bytes()
    for path in bad.values():
        assert not (out / path.name).exists()
    assert len(load_reference_set(out).good) == len(GOOD_CASES)


def test_out_inside_the_folder_is_not_rescanned(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    write_rgb_png(folder / "a.png")
    build_reference_set(folder, out=folder / "built")
    result = build_reference_set(folder, out=folder / "built")
    assert [r["file"] for r in result.items] == ["a.png"]


def test_tiles_are_cut_exactly(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)
    Image.fromarray(big).save(folder / "big.png")
    write_rgb_png(folder / "small.png")  # 64x48: too short for one 50x50 tile
    out = tmp_path / "tiles"
    result = build_reference_set(folder, out=out, tile=50)
    assert [r["file"] for r in result.items] == ["big_y0_x0.png", "big_y0_x50.png"]
    for row, x in zip(result.items, (0, 50), strict=True):
        tile = np.asarray(Image.open(out / row["file"]))
        np.testing.assert_array_equal(tile, big[0:50, x:x + 50])
        assert f"crop x={x} y=0 size=50 of big.png" in row["source"]
    assert any("small.png" in p and "smaller than one 50x50 tile" in p for p in result.problems)
    assert len(load_reference_set(out).good) == 2
    with pytest.raises(ManifestError, match="needs an output folder"):
        build_reference_set(folder, tile=50)
    with pytest.raises(ManifestError, match="minimum side"):
        build_reference_set(folder, out=out, tile=8)


def test_ids_stay_unique_when_stems_collide(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    write_rgb_png(folder / "x.png", seed=1)
    Image.open(folder / "x.png").convert("RGB").save(folder / "x.jpg", quality=95)
    write_rgb_png(folder / "y.png", seed=2)
    result = build_reference_set(folder)
    assert sorted(r["id"] for r in result.items) == ["x.jpg", "x.png", "y"]


def test_identical_content_is_warned(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    write_rgb_png(folder / "one.png")
    write_rgb_png(folder / "two.png")
    result = build_reference_set(folder)
    assert any("identical content" in w and "one.png = two.png" in w for w in result.warnings)


def test_symlink_out_of_the_folder_is_skipped_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    write_rgb_png(folder / "a.png")
    outside = write_rgb_png(tmp_path / "secret.png", seed=4)
    os.symlink(outside, folder / "link.png")
    result = build_reference_set(folder)
    assert [r["file"] for r in result.items] == ["a.png"]
    assert any("link.png" in p and "outside" in p for p in result.problems)


def test_hidden_files_are_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    (folder / ".cache").mkdir(parents=True)
    write_rgb_png(folder / "a.png")
    write_text_as_png(folder / "._a.png")
    write_rgb_png(folder / ".cache" / "b.png")
    result = build_reference_set(folder)
    assert [r["file"] for r in result.items] == ["a.png"] and result.ok


def test_folder_without_usable_images_raises_listing_the_bad(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    write_text_as_png(folder / "fake.png")
    with pytest.raises(ManifestError) as info:
        build_reference_set(folder)
    assert "no usable images" in str(info.value) and "fake.png" in str(info.value)
    with pytest.raises(ManifestError, match="not a folder"):
        build_reference_set(tmp_path / "absent")




def test_unwritable_manifest_says_to_use_out(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    write_rgb_png(folder / "a.png")
    (folder / "manifest.csv").mkdir()  # a directory in the way: unwritable even for root
    with pytest.raises(ManifestError, match="cannot write the manifest") as info:
        build_reference_set(folder)
    assert "--out" in str(info.value)


def test_a_caption_file_with_a_text_column_makes_a_text_set_that_rebuilds_keep(tmp_path: Path) -> None:
    folder = tmp_path / "signs"
    folder.mkdir()
    for k, name in enumerate(("exit.png", "blank.png", "menu.png")):
        write_rgb_png(folder / name, seed=k)
    table = tmp_path / "captions.csv"
    table.write_text('file,caption,text\nexit.png,An exit sign.,EXIT\nmenu.png,A menu.,"Soup  of the day\n\n'
                     'Bread  3.50 "\nblank.png,A wall.,\n', encoding="utf-8")
    build_reference_set(folder, captions=table)
    refset = load_reference_set(folder)
    assert refset.text_set and refset.kinds == ["text"]
    assert {i.id: i.text for i in refset.items} == {"exit": "EXIT", "menu": "Soup of the day\nBread 3.50",
                                                    "blank": ""}
    first = refset.sha256
    build_reference_set(folder)  # no caption file: the manifest's text column is kept
    again = load_reference_set(folder)
    assert again.text_set and {i.id: i.text for i in again.items} == {i.id: i.text for i in refset.items}
    assert again.sha256 == first

    as_json = tmp_path / "captions.json"
    as_json.write_text(json.dumps({"exit.png": {"caption": "An exit sign.", "text": "EXIT"},
                                   "menu.png": {"caption": "A menu.", "text": "Soup of the day\nBread 3.51"}}),
                       encoding="utf-8")
    build_reference_set(folder, captions=as_json)
    changed = load_reference_set(folder)
    assert {i.id: i.text for i in changed.items}["menu"] == "Soup of the day\nBread 3.51"
    assert changed.sha256 != first  # the true text is part of a text set's identity
    with pytest.raises(ManifestError, match="text set cannot be tiled"):
        build_reference_set(folder, captions=table, out=tmp_path / "tiles", tile=32)
