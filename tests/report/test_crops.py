"""Invention seen at release resolution: a 2048 x 1280 reference, an approved run that invents nothing and a
candidate that invents a fine grating (period 4 px, +-0.1) in one 64 x 64 area. The stored crop holds the grating
at 1:1, the thumbnail does not (its energy there is measured in both), the compare view shows the crop at 1:1 in
headless Chromium (the exact pixels, found in the screenshot), its 2x zoom and its approved/candidate toggle."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.feature import match_template

from qa.decoders.catalog import DECODERS
from qa.engine.run import RunConfig, RunEngine
from qa.gate.signoff import record_signoff
from qa.report.browser import screenshot
from qa.report.build import crop_folder, write_report
from qa.report.crops import CROP_EMBED_BUDGET
from qa.report.export import find_browser
from qa.store import Store
from qa.store import pixels as store_pixels
from qa.store.records import RegionRow, TiledImage
from tests.crops_helpers import PLANT_SIDE, PlantedIdentity, grating, photo_refset, plant_origin
from tests.gate.signing_helpers import export_reviewer, make_reviewer

WIDTH, HEIGHT = 2048, 1280
AMPLITUDE = 0.1


@dataclass
class Planted:
    """The store, both runs, the report and what was read back for the planted case."""

    root: Path
    store: Store
    approved: str
    candidate: str
    report: Path
    top: RegionRow


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    root = tmp_path_factory.mktemp("crops")
    refset = photo_refset(root / "set", WIDTH, HEIGHT, n=1)
    with pytest.MonkeyPatch.context() as mp:
        DECODERS.names()
        mp.setitem(DECODERS._targets, "planted", PlantedIdentity)  # noqa: SLF001 - test-only registration
        mp.chdir(root)
        store = Store(root / "qa.duckdb")
        cfg = RunConfig(decoder="planted", reference_set=str(refset), metrics=["psnr", "invented_detail"],
                        progress=False)
        export_reviewer(mp, *make_reviewer(root, "ana"))
        approved = RunEngine(store).start(cfg)
        record_signoff(store, approved, "ana", "approve", "first release of the test decoder", override=True)
        (root / "qa.toml").write_text(f"[decoders.planted]\nplant = {AMPLITUDE}\n")
        candidate = RunEngine(store).start(cfg)
        report = write_report(store, out=root / "review.html")
        with store.snapshot() as db:
            top = next(r for r in store_pixels.regions_of(db, [candidate])[candidate] if r.rank == 0)
        yield Planted(root, store, approved, candidate, report, top)


def _tiled(p: Planted, run: str, kind: str) -> TiledImage:
    with p.store.snapshot() as db:
        return store_pixels.images_of(db, [run])[(run, "photo00", kind)]


def _cut(p: Planted, run: str, kind: str, box: tuple[int, int, int, int]) -> np.ndarray:
    """The stored full-resolution pixels of ``run`` in ``box`` (x, y, w, h), from its tiles."""
    image = _tiled(p, run, kind)
    t = image.tile_side
    x, y, w, h = box
    keys = {(image.image_sha256, ty, tx) for ty in range(y // t, -(-(y + h) // t)) for tx in range(x // t, -(-(x + w) // t))}
    with p.store.snapshot() as db:
        tiles = store_pixels.tiles(db, keys)
    canvas = np.zeros((image.height, image.width, 3), np.uint8)
    for (_, ty, tx), blob in tiles.items():
        with Image.open(io.BytesIO(blob)) as tile:
            arr = np.asarray(tile.convert("RGB"))
        canvas[ty * t:ty * t + arr.shape[0], tx * t:tx * t + arr.shape[1]] = arr
    return canvas[y:y + h, x:x + w].astype(np.float64) / 255.0


def _thumb(p: Planted, run: str) -> np.ndarray:
    png = p.store.query("select png from images where run_id = ? and kind = 'output'", [run])[0][0]
    with Image.open(io.BytesIO(bytes(png))) as img:  # type: ignore[arg-type]
        return np.asarray(img.convert("RGB"), np.float64) / 255.0


def test_the_strongest_region_is_the_planted_area(planted: Planted) -> None:
    x0, y0 = plant_origin(WIDTH, HEIGHT)
    top = planted.top
    assert abs(top.x - x0) <= 16 and abs(top.y - y0) <= 16, top
    assert (top.crop_w, top.crop_h) == (256, 256)
    assert top.crop_x <= x0 and x0 + PLANT_SIDE <= top.crop_x + 256
    assert top.crop_y <= y0 and y0 + PLANT_SIDE <= top.crop_y + 256
    with planted.store.snapshot() as db:
        assert planted.approved not in store_pixels.regions_of(db, [planted.approved])  # identity: no region


def test_the_crop_shows_the_grating_and_the_thumbnail_does_not(planted: Planted) -> None:
    """Energy of (candidate - approved) over the planted area: at 1:1 in the stored crop, and in the stored
    160-px thumbnails (where the area is 5 x 5 px)."""
    x0, y0 = plant_origin(WIDTH, HEIGHT)
    area = (x0, y0, PLANT_SIDE, PLANT_SIDE)
    diff = (_cut(planted, planted.candidate, "output", area) - _cut(planted, planted.approved, "output", area)).mean(-1)
    # the crop holds the planted pattern itself: +-0.1 bars of 2 px, correlation ~1 with the grating
    corr = float(np.corrcoef(diff.ravel(), grating().ravel())[0, 1])
    assert corr > 0.98, corr
    # the pattern's energy: the variance of the difference (the bars have zero mean and do not clip here)
    crop_energy = float(np.var(diff))
    assert crop_energy > 0.9 * AMPLITUDE**2, crop_energy
    a, c = _thumb(planted, planted.approved), _thumb(planted, planted.candidate)
    assert a.shape[:2] == (100, 160)
    s = 160 / WIDTH  # thumbnail pixels whose footprint lies inside the planted area (64 / 12.8 = 5 a side)
    ty0, ty1 = int(np.ceil(y0 * s)), int((y0 + PLANT_SIDE) * s)
    tx0, tx1 = int(np.ceil(x0 * s)), int((x0 + PLANT_SIDE) * s)
    assert ty1 - ty0 >= 4 and tx1 - tx0 >= 4
    thumb_energy = float(np.var((c - a)[ty0:ty1, tx0:tx1].mean(-1)))
    assert thumb_energy < crop_energy / 100, (thumb_energy, crop_energy)  # invisible in the thumbnail


def _screen(report: Path, name: str, html: str | None = None, height: int = 1300) -> np.ndarray:
    page = report if html is None else report.with_name(f"{name}.html")
    if html is not None:
        page.write_text(html, encoding="utf-8")
    shot = screenshot(page, report.with_name(f"{name}.png"), size=(1400, height), fragment="cmp-0-0")
    with Image.open(shot) as img:
        return np.asarray(img.convert("L"), np.float64) / 255.0


def _template(planted: Planted, zoom: int = 1, run: str | None = None) -> np.ndarray:
    """The stored output of ``run`` (default: the candidate) around the planted area, 8 px of context, as the
    page shows it (grey, ``zoom`` x ``zoom`` blocks)."""
    x0, y0 = plant_origin(WIDTH, HEIGHT)
    rgb = _cut(planted, run or planted.candidate, "output", (x0 - 8, y0 - 8, PLANT_SIDE + 16, PLANT_SIDE + 16))
    grey = np.asarray(Image.fromarray((rgb * 255).round().astype(np.uint8)).convert("L"), np.float64) / 255.0
    return np.kron(grey, np.ones((zoom, zoom)))


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (CI installs it)")
def test_the_compare_view_shows_the_crop_at_1to1_zoom_and_toggle(planted: Planted) -> None:
    text = planted.report.read_text(encoding="utf-8")
    assert text.count('class="crops"') == 1 and "candidate region 1" in text
    # small: every crop image is embedded (no folder beside the report)
    assert not crop_folder(planted.report).exists() and len(text) < 9_000_000 + CROP_EMBED_BUDGET
    # inside the dashed outline of the region window (8 px of context + its 1 px border): the planted area
    template = _template(planted)[9:-9, 9:-9]
    page = _screen(planted.report, "cmp")
    found = match_template(page, template)
    assert found.max() > 0.999, found.max()  # the stored pixels, at 1:1, with the grating
    y, x = np.unravel_index(int(np.argmax(found)), found.shape)
    inner = (slice(y, y + template.shape[0]), slice(x, x + template.shape[1]))
    assert np.abs(page[inner] - template).max() <= 1 / 255  # the same pixels
    # 2x zoom (nearest neighbour): the same pixels as 2 x 2 blocks
    zoomed = re.sub(r'(class="z1") checked', r"\1", text).replace('class="z2">', 'class="z2" checked>')
    page2 = _screen(planted.report, "cmp-z2", zoomed, height=1900)  # crops wrap: two 512 px columns a row
    assert match_template(page2, _template(planted, 2)[18:-18, 18:-18]).max() > 0.999
    # the toggle puts the approved run in the candidate's column: at the same place of the page, the approved
    # run's pixels exactly, and the grating gone
    flipped = text.replace('class="flip">', 'class="flip" checked>')
    page3 = _screen(planted.report, "cmp-flip", flipped)
    approved = _template(planted, run=planted.approved)[9:-9, 9:-9]
    assert np.abs(page3[inner] - approved).max() <= 1 / 255
    assert np.abs(page3[inner] - template).max() > 0.05


def test_a_store_without_full_resolution_pixels_reports_without_crops(planted: Planted, tmp_path: Path) -> None:
    """A file of the schema before full-resolution pixels (read as it is, read-only) still gives a report: the
    compare view says why there are no crops."""
    import shutil

    import duckdb

    from qa.gate import signoff as signoff_module
    from qa.gate.signoff_format import canonical_row_v3
    from qa.store.anchor import GENESIS, write_anchor
    from qa.store.schema import MIGRATIONS

    version = next(v for v, about, _ in MIGRATIONS if about.startswith("full-resolution pixels"))
    old = tmp_path / "old.duckdb"
    shutil.copy(planted.store.path, old)
    with duckdb.connect(str(old)) as con:  # the approval as a qa of that schema signed it: row format 3
        con.execute("delete from signoff_proofs")
        con.execute("delete from signoffs")
    write_anchor(old, dict(GENESIS))  # the anchor of that empty chain
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(signoff_module, "ROW_FORMAT", 3)
        mp.setattr(signoff_module, "canonical_row_v4", canonical_row_v3)
        record_signoff(Store(old), planted.approved, "ana", "approve", "first release of the test decoder",
                       override=True)
    with duckdb.connect(str(old)) as con:
        for table in ("regions", "pixels", "tiles"):
            con.execute(f"drop table {table}")
        con.execute("delete from schema_version where version >= ?", [version])
    report = write_report(Store(old), out=tmp_path / "old.html")
    text = report.read_text(encoding="utf-8")
    assert 'class="crops"' not in text
    assert "no crops: this run stored no full-resolution pixels" in text


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (CI installs it)")
def test_crops_over_the_budget_are_linked_beside_the_report(planted: Planted, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With no room to embed, every crop is a file in ``<name>_crops/`` (named by its hash), the page shows them
    from there (the same pixels), and a later report that embeds them removes those files again."""
    import qa.report.crops as crops_module

    out = tmp_path / "linked.html"
    monkeypatch.setattr(crops_module, "CROP_EMBED_BUDGET", 0)
    write_report(planted.store, out=out)
    folder = crop_folder(out)
    files = sorted(p.name for p in folder.iterdir())
    text = out.read_text(encoding="utf-8")
    assert files and all(f"url({folder.name}/{name})" in text for name in files)
    # review audit 2026-12-07: the page alone showed blank crops without a word; now it says where they are,
    # and so does the command
    assert f'<p class="linked-crops">{len(files)} of the 1:1 crops are files in <code>{folder.name}/</code>' in text
    from qa.report.build import linked_crops_note

    assert linked_crops_note(out) == (f"crops: {folder} ({len(files)} files the report links past its size budget: "
                                      "keep the folder beside it)")
    (folder / "notes.txt").write_text("not ours")
    page = _screen(out, "linked")
    assert match_template(page, _template(planted)).max() > 0.99
    monkeypatch.setattr(crops_module, "CROP_EMBED_BUDGET", 4_000_000)
    write_report(planted.store, out=out)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # only qa's own files are removed
    assert "linked-crops" not in out.read_text(encoding="utf-8").split("</style>")[-1]
