"""Full-resolution pixels a run keeps: lossless tiles that reassemble to the stored image, crop boxes of whole
tiles around each region, the strongest region on a planted invention, and a reference stored once for all
runs (:mod:`qa.engine.pixels`, :mod:`qa.store.pixels`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.engine import pixels
from qa.engine.run import RunConfig, RunEngine
from qa.imageio import load_image, to_uint8
from qa.metrics.invented.regions import Region
from qa.store import Store
from qa.store import pixels as store_pixels
from tests.crops_helpers import PLANT_SIDE, PlantedIdentity, photo_refset, plant_origin


def _assemble(image: store_pixels.TiledImage, tiles: dict[tuple[str, int, int], bytes]) -> np.ndarray:
    first = next(iter(tiles.values()))
    with Image.open(io.BytesIO(first)) as probe:
        sixteen = probe.mode.startswith("I")
    out = np.zeros((image.height, image.width) if sixteen else (image.height, image.width, 3),
                   np.uint16 if sixteen else np.uint8)
    t = image.tile_side
    for (sha, ty, tx), blob in tiles.items():
        assert sha == image.image_sha256
        with Image.open(io.BytesIO(blob)) as tile:
            arr = np.asarray(tile) if sixteen else np.asarray(tile.convert("RGB"))
        out[ty * t:ty * t + arr.shape[0], tx * t:tx * t + arr.shape[1]] = arr
    return out


def test_tiles_are_lossless_and_cover_the_image() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)
    img = pixels.tiled("c", 0, "output", rgb)
    assert sorted(img.tiles or {}) == [(ty, tx) for ty in range(3) for tx in range(3)]  # 128 + 128 + 44 / 4
    got = _assemble(img, {(img.image_sha256, ty, tx): b for (ty, tx), b in (img.tiles or {}).items()})
    assert np.array_equal(got, rgb)
    values = rng.random((130, 129)).astype(np.float32) * 0.1
    stored = pixels.map_pixels(values)
    assert stored.dtype == np.uint16 and np.abs(stored / pixels.MAP_SCALE - values).max() <= 0.5 / pixels.MAP_SCALE
    m = pixels.tiled("c", 0, "map:x", stored)
    assert np.array_equal(_assemble(m, {(m.image_sha256, *k): b for k, b in (m.tiles or {}).items()}), stored)
    assert pixels.pixel_sha256(rgb) != pixels.pixel_sha256(rgb[:, :, ::-1])


@pytest.mark.parametrize(("width", "height"), [(2048, 1280), (300, 200), (100, 90), (129, 1000)])
def test_crop_boxes_are_whole_tiles_holding_the_region(width: int, height: int) -> None:
    side = min(64, width, height)
    for x in range(0, width - side + 1, 7):
        for y in range(0, height - side + 1, 29):
            bx, by, bw, bh = pixels.crop_box(Region(x, y, side, 1.0), width, height)
            assert bx % pixels.TILE_SIDE == 0 and by % pixels.TILE_SIDE == 0
            assert bx <= x and x + side <= bx + bw <= width, (x, bx, bw)
            assert by <= y and y + side <= by + bh <= height, (y, by, bh)
            # two tiles a side where there are two (an edge tile may be partial), the whole side otherwise
            t = pixels.TILE_SIDE
            assert bw == min(width - bx, 2 * t) and (width <= t or bw > t)
            assert bh == min(height - by, 2 * t) and (height <= t or bh > t)


def test_keep_without_an_invented_detail_map_keeps_the_output_only() -> None:
    """Regions come from invented-detail maps only: another metric's map (SSIM's dissimilarity) is neither in
    their units nor small, so it gives no region and is not stored."""
    out = np.full((40, 50, 3), 0.5, np.float32)
    for maps in ({}, {"ssim": np.ones((40, 50), np.float32)}):
        regions, images = pixels.keep("c", 0, out, {"reference": out}, maps)
        assert regions == [] and [i.kind for i in images] == ["output"]
    assert pixels.region_map({"zeta": out[..., 0], "alpha": out[..., 0]}) is None
    assert pixels.region_map({"alpha": out[..., 0], "invented_detail_baseline": out[..., 0]}) == \
        "invented_detail_baseline"


def test_the_first_region_is_where_invented_peak_located_it() -> None:
    """The strongest invented region is located once (``invented_peak``'s ``peak_y``, ``peak_x``): the first
    crop goes there even where the share's map is stronger elsewhere; without a usable centre the map's
    strongest window comes first."""
    out = np.full((256, 320, 3), 0.5, np.float32)
    inv = np.zeros((256, 320), np.float32)
    inv[180:230, 240:300] = 0.05  # the map's strongest place
    inv[20:50, 20:50] = 0.02  # where the region score found its strongest region
    maps = {"invented_detail": inv}
    regions, _ = pixels.keep("c", 0, out, {"reference": out}, maps, {"invented_peak": {"peak_y": 35, "peak_x": 35}})
    assert (regions[0].x, regions[0].y) == (3, 3) and 236 <= regions[1].x + 32 <= 300
    for extras in (None, {}, {"invented_peak": {}}, {"invented_peak": {"peak_y": 900, "peak_x": 35}},
                   {"ssim": {"peak_y": 35, "peak_x": 35}}):
        regions, _ = pixels.keep("c", 0, out, {"reference": out}, maps, extras)
        assert 236 <= regions[0].x + 32 <= 300 and 176 <= regions[0].y + 32 <= 230, extras


def test_a_run_keeps_the_planted_place_and_the_reference_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DECODERS._targets, "planted", PlantedIdentity)  # noqa: SLF001 - test-only registration
    monkeypatch.chdir(tmp_path)
    refset = photo_refset(tmp_path / "set", 640, 400, n=2)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="planted", reference_set=str(refset), metrics=["invented_detail"], progress=False)
    plain = RunEngine(store).start(cfg)
    (tmp_path / "qa.toml").write_text("[decoders.planted]\nplant = 0.1\n")
    planted = RunEngine(store).start(cfg)
    with store.snapshot() as db:
        regions = store_pixels.regions_of(db, [plain, planted])
        images = store_pixels.images_of(db, [plain, planted])
        sizes = store_pixels.stored_bytes(db, planted)
        # the identity invents nothing: no region; the planted run's strongest region is the grating
        assert plain not in regions
        x0, y0 = plant_origin(640, 400)
        tops = {r.case_id: r for r in regions[planted] if r.rank == 0}
        assert sorted(tops) == ["photo00", "photo01"]
        for r in tops.values():
            assert r.map_kind == "map:invented_detail" and r.side == 64 and r.score > 0
            assert abs(r.x - x0) <= PLANT_SIDE // 4 and abs(r.y - y0) <= PLANT_SIDE // 4, r
            assert r.crop_x <= x0 and x0 + PLANT_SIDE <= r.crop_x + r.crop_w
            assert r.crop_y <= y0 and y0 + PLANT_SIDE <= r.crop_y + r.crop_h
        # the stored output is the decoder's output, 8-bit, at full resolution
        out = images[(planted, "photo00", "output")]
        wanted = [(out.image_sha256, ty, tx) for ty in range(4) for tx in range(5)]
        got = _assemble(out, store_pixels.tiles(db, wanted))
        ref = load_image(refset / "photo00.png").pixels
        latent = torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1)[None]))
        want = PlantedIdentity(plant=0.1).decode(DecodeBatch(["photo00"], [""], latent, (400, 640)), 0)
        assert np.array_equal(got, to_uint8(want[0].numpy().transpose(1, 2, 0)))
        # both runs and both kinds name the same reference pixels: stored once
        assert images[(plain, "photo00", "reference")].image_sha256 == images[(planted, "photo00", "reference")].image_sha256
        n_ref_tiles = db.query("select count(*) from tiles where image_sha256 = ?",
                               [images[(plain, "photo00", "reference")].image_sha256])[0][0]
        assert n_ref_tiles == 4 * 5
        assert sizes["output"] > 0 and sizes["map:invented_detail"] > 0 and sizes["regions"] >= 2


def test_older_runs_lose_their_tiles_but_approved_and_latest_keep_them(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Four runs of one decoder (each inventing a different grating): the approved first run and the two newest
    keep their tiles, the second loses its output and map tiles; the shared reference stays; rows stay."""
    from qa.gate.signoff import record_signoff
    from tests.gate.signing_helpers import export_reviewer, make_reviewer

    monkeypatch.setitem(DECODERS._targets, "planted", PlantedIdentity)  # noqa: SLF001 - test-only registration
    monkeypatch.chdir(tmp_path)
    export_reviewer(monkeypatch, *make_reviewer(tmp_path, "ana"))
    refset = photo_refset(tmp_path / "set", 320, 200, n=1)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="planted", reference_set=str(refset), metrics=["invented_detail"], progress=False)
    runs = []
    for amplitude in (0.04, 0.06, 0.08, 0.1):
        (tmp_path / "qa.toml").write_text(f"[decoders.planted]\nplant = {amplitude}\n")
        runs.append(RunEngine(store).start(cfg))
        if len(runs) == 1:
            record_signoff(store, runs[0], "ana", "approve", "first release", override=True)

    def has_tiles(run: str, kind: str) -> bool:
        with store.snapshot() as db:
            sha = store_pixels.images_of(db, [run])[(run, "photo00", kind)].image_sha256
            return bool(db.query("select count(*) from tiles where image_sha256 = ?", [sha])[0][0])

    assert [has_tiles(r, "output") for r in runs] == [True, False, True, True]
    assert [has_tiles(r, "map:invented_detail") for r in runs] == [True, False, True, True]
    assert has_tiles(runs[1], "reference")  # shared with the kept runs
    with store.snapshot() as db:
        assert runs[1] in store_pixels.regions_of(db, runs)  # coordinates and scores stay
    assert store_pixels.prune(store, 2) == 0  # nothing more to drop


def test_a_reference_whose_tiles_are_stored_is_not_encoded_again(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run of the same set (another decoder setting) names its references' stored tiles instead of
    encoding them again: the same rows, the same pixels read back; a changed reference is encoded."""
    monkeypatch.setitem(DECODERS._targets, "planted", PlantedIdentity)  # noqa: SLF001 - test-only registration
    monkeypatch.chdir(tmp_path)
    refset = photo_refset(tmp_path / "set", 320, 200, n=2)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="planted", reference_set=str(refset), metrics=["invented_detail"], progress=False)
    encoded: list[str] = []
    real = pixels.tiled
    monkeypatch.setattr(pixels, "tiled", lambda c, s, kind, px: (encoded.append(kind), real(c, s, kind, px))[1])
    first = RunEngine(store).start(cfg)
    assert encoded.count("reference") == 2
    assert pixels.stored_references(Store(tmp_path / "empty.duckdb"), {"photo00": None}) == {}
    encoded.clear()
    (tmp_path / "qa.toml").write_text("[decoders.planted]\nplant = 0.1\n")
    second = RunEngine(store).start(cfg)
    assert "reference" not in encoded and encoded.count("output") == 2
    with store.snapshot() as db:
        images = store_pixels.images_of(db, [first, second])
        for case in ("photo00", "photo01"):
            a, b = images[(first, case, "reference")], images[(second, case, "reference")]
            assert (a.image_sha256, a.width, a.height, a.tile_side) == (b.image_sha256, b.width, b.height, b.tile_side)
        ref = images[(second, "photo00", "reference")]
        got = _assemble(ref, store_pixels.tiles(db, [(ref.image_sha256, ty, tx) for ty in range(2) for tx in range(3)]))
    assert np.array_equal(got, to_uint8(load_image(refset / "photo00.png").pixels))
    # a reference whose pixels changed (same case id) has no stored tiles: it is encoded
    changed = load_image(refset / "photo00.png").pixels.copy()
    changed[0, 0] = 1.0 - changed[0, 0]
    assert pixels.stored_references(store, {"photo00": changed, "photo01": None}) == {}
    assert pixels.stored_references(store, {"photo00": load_image(refset / "photo00.png").pixels}) == {
        "photo00": images[(first, "photo00", "reference")].image_sha256}


def test_a_named_reference_whose_tiles_a_concurrent_prune_deleted_is_encoded_at_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store held a reference's tiles when the shard began (so the run named them by hash), but another
    run's prune deleted them before the shard's commit: the commit encodes them after all, and the run's
    reference reads back whole (no pixel row naming tiles that are not there)."""
    import qa.engine.run as engine_run

    monkeypatch.setitem(DECODERS._targets, "planted", PlantedIdentity)  # noqa: SLF001 - test-only registration
    monkeypatch.chdir(tmp_path)
    refset = photo_refset(tmp_path / "set", 320, 200, n=2)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="planted", reference_set=str(refset), metrics=["invented_detail"], progress=False)
    RunEngine(store).start(cfg)
    named: dict[str, str] = {}

    def named_then_pruned(st: Store, refs: dict[str, np.ndarray | None]) -> dict[str, str]:
        named.update(pixels.stored_references(st, refs))
        with st.transaction() as con:  # what a concurrent prune does between this read and the shard's commit
            for sha in named.values():
                con.execute("delete from tiles where image_sha256 = ?", [sha])
        return named

    monkeypatch.setattr(engine_run, "stored_references", named_then_pruned)
    (tmp_path / "qa.toml").write_text("[decoders.planted]\nplant = 0.1\n")
    second = RunEngine(store).start(cfg)
    assert set(named) == {"photo00", "photo01"}
    with store.snapshot() as db:
        ref = store_pixels.images_of(db, [second])[(second, "photo00", "reference")]
        got = _assemble(ref, store_pixels.tiles(db, [(ref.image_sha256, ty, tx) for ty in range(2) for tx in range(3)]))
    assert np.array_equal(got, to_uint8(load_image(refset / "photo00.png").pixels))
