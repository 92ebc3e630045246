"""`qa score` end to end on temporary folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from qa.errors import QAError
from qa.imageio import save_png
from qa.score import score_folders
from tests.metrics.invented.synth import add_luma, box, texture

METRICS = ["psnr", "invented_detail", "lost_detail", "seed_variance", "latent_consistency"]


@pytest.fixture()
def folders(tmp_path: Path, photo: np.ndarray) -> tuple[Path, Path, Path]:
    ref, c1, c2 = tmp_path / "ref", tmp_path / "seed0", tmp_path / "seed1"
    m = box(30, 70, 30, 70)
    save_png(photo, ref / "sub" / "a.png")
    Image.fromarray((photo * 255).astype(np.uint8)).save(ref / "b.jpg", quality=95)  # pairs by stem
    save_png(photo, c1 / "sub" / "a.png")  # identical to its reference
    save_png(add_luma(photo, 0.06 * texture(1) * m), c1 / "b.png")  # invented texture in m
    save_png(add_luma(photo, 0.06 * texture(2) * m), c2 / "b.png")  # another seed
    save_png(photo, c2 / "sub" / "a.png")
    save_png(photo, c1 / "orphan.png")  # no reference
    (c1 / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return ref, c1, c2


def _get(df: pd.DataFrame, image: str, metric: str) -> pd.Series:
    row = df[(df.image == image) & (df.metric == metric)]
    assert len(row) == 1, (image, metric, df)
    return row.iloc[0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_end_to_end(folders: tuple[Path, Path, Path], tmp_path: Path, suffix: str) -> None:
    ref, c1, c2 = folders
    out, maps = tmp_path / f"scores{suffix}", tmp_path / "maps"
    summary = score_folders(ref, [c1, c2], out, maps=maps, metrics=METRICS, encoder="area-x4")
    df = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(df.columns) == ["image", "metric", "value", "status", "detail"]
    assert summary.images == 4 and summary.rows == 4 * len(METRICS) == len(df)
    # identical pair: nothing invented, infinite PSNR, two identical seeds -> seed variance exactly 0
    assert _get(df, "sub/a.png", "invented_detail").value == 0.0
    assert _get(df, "sub/a.png", "psnr").value == np.inf
    assert _get(df, "sub/a.png", "seed_variance").value == 0.0
    assert _get(df, "sub/a.png", "latent_consistency").status == "ok"
    b = _get(df, "b.png", "invented_detail")
    assert b.status == "ok" and b.value > 0.001 and "mean over 2 seeds" in b.detail
    assert _get(df, "b.png", "seed_variance").value > 0
    # unreadable candidate: error rows naming the file, for every metric
    broken = df[df.image == "broken.png"]
    assert len(broken) == len(METRICS) and set(broken.status) == {"error"}
    assert broken.detail.str.contains("broken.png").all()
    # no reference: reference metrics missing with the reason; seed_variance needs 2 seeds -> missing too
    orphan = _get(df, "orphan.png", "invented_detail")
    assert orphan.status == "missing" and "no reference file orphan" in orphan.detail
    assert np.isnan(orphan.value)
    # maps: one PNG per scored image at the candidate's size, brightest inside the planted box
    assert sorted(p.relative_to(maps).as_posix() for p in maps.rglob("*.png")) == ["b.png", "sub/a.png"]
    bmap = np.asarray(Image.open(maps / "b.png"))
    outside = ~box(22, 78, 22, 78)
    assert bmap.shape == (96, 96) and bmap[30:70, 30:70].mean() > 5 * (bmap[outside].mean() + 1)
    assert int(np.asarray(Image.open(maps / "sub" / "a.png")).max()) == 0


def test_reference_free_metric_on_orphans(tmp_path: Path, photo: np.ndarray) -> None:
    ref, c1, c2 = tmp_path / "ref", tmp_path / "s0", tmp_path / "s1"
    ref.mkdir()
    save_png(photo, c1 / "x.png")
    save_png(add_luma(photo, 0.05 * texture(3)), c2 / "x.png")
    score_folders(ref, [c1, c2], tmp_path / "o.csv", metrics=["seed_variance", "psnr"])
    df = pd.read_csv(tmp_path / "o.csv")
    assert _get(df, "x.png", "seed_variance").status == "ok"
    assert _get(df, "x.png", "psnr").status == "missing"


def test_size_mismatch_is_missing_with_reason(tmp_path: Path, photo: np.ndarray) -> None:
    ref, c1 = tmp_path / "ref", tmp_path / "c"
    save_png(photo[:64, :64], ref / "x.png")
    save_png(photo, c1 / "x.png")
    score_folders(ref, [c1], tmp_path / "o.csv", metrics=["invented_detail"])
    row = _get(pd.read_csv(tmp_path / "o.csv"), "x.png", "invented_detail")
    assert row.status == "missing" and "resizes nothing" in row.detail


def test_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    with pytest.raises(QAError, match="parquet or .csv"):
        score_folders(tmp_path / "r", [tmp_path / "r"], tmp_path / "o.txt")
    with pytest.raises(QAError, match="does not exist"):
        score_folders(tmp_path / "r", [tmp_path / "nope"], tmp_path / "o.csv")
    with pytest.raises(QAError, match="area-xN"):
        score_folders(tmp_path / "r", [tmp_path / "r"], tmp_path / "o.csv", encoder="vae")


def test_metric_that_cannot_be_built_gives_error_rows(tmp_path: Path, photo: np.ndarray,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.metrics.catalog import METRICS as REG

    def boom() -> None:
        raise RuntimeError("weights corrupt")

    monkeypatch.setitem(REG._targets, "boom_metric", boom)
    save_png(photo, tmp_path / "r" / "x.png")
    save_png(photo, tmp_path / "c" / "x.png")
    score_folders(tmp_path / "r", [tmp_path / "c"], tmp_path / "o.csv", metrics=["boom_metric", "psnr"])
    df = pd.read_csv(tmp_path / "o.csv")
    row = _get(df, "x.png", "boom_metric")
    assert row.status == "error" and "weights corrupt" in row.detail
    assert _get(df, "x.png", "psnr").status == "ok"


def test_a_reference_no_folder_holds_is_an_error_row_and_a_missing_seed_is_named(tmp_path: Path,
                                                                                  photo: np.ndarray) -> None:
    """Audit 2026-12-07: a reference with no candidate in any folder got no row at all, and an image one seed
    folder lacked was averaged over the others without a word. Now the first is an error row for every metric
    (fail closed: the decoder produced nothing for it), the second says which folder lacks it."""
    ref, c1, c2 = tmp_path / "ref", tmp_path / "s0", tmp_path / "s1"
    for name in ("x", "y", "z"):
        save_png(photo, ref / f"{name}.png")
    save_png(photo, c1 / "x.png")
    save_png(photo, c2 / "x.png")
    save_png(photo, c1 / "y.png")  # s1 lacks y; nobody has z
    summary = score_folders(ref, [c1, c2], tmp_path / "o.csv", metrics=["psnr"])
    df = pd.read_csv(tmp_path / "o.csv")
    assert summary.images == 3 and len(df) == 3
    z = _get(df, "z.png", "psnr")
    assert z.status == "error" and f"no candidate file z.* in {c1}, {c2}" in z.detail and np.isnan(z.value)
    y = _get(df, "y.png", "psnr")
    assert y.status == "ok" and f"no candidate file y.* in {c2}" in y.detail
    assert _get(df, "x.png", "psnr").detail != y.detail


def test_maps_of_names_with_dots_do_not_overwrite_each_other(tmp_path: Path, photo: np.ndarray) -> None:
    """Review audit 2026-12-07: shot.1.png and shot.2.png both wrote maps/shot.png (the last won, and an image
    with a planted region was shown by another's empty map)."""
    ref, out, maps = tmp_path / "ref", tmp_path / "out", tmp_path / "maps"
    m = box(30, 70, 30, 70)
    for name, planted in (("shot.1", True), ("shot.2", False)):
        save_png(photo, ref / f"{name}.png")
        save_png(add_luma(photo, 0.06 * texture(1) * m) if planted else photo, out / f"{name}.png")
    summary = score_folders(ref, [out], tmp_path / "o.csv", maps=maps, metrics=["invented_detail"])
    assert summary.maps_written == 2 and sorted(p.name for p in maps.iterdir()) == ["shot.1.png", "shot.2.png"]
    assert np.asarray(Image.open(maps / "shot.1.png")).max() > 0 == np.asarray(Image.open(maps / "shot.2.png")).max()


def test_the_summary_says_what_was_written(tmp_path: Path, photo: np.ndarray) -> None:
    """Review audit 2026-12-07: `qa score` printed a ScoreSummary(...) repr."""
    save_png(photo, tmp_path / "r" / "x.png")
    save_png(photo, tmp_path / "c" / "x.png")
    text = str(score_folders(tmp_path / "r", [tmp_path / "c"], tmp_path / "o.csv", maps=tmp_path / "m",
                             metrics=["psnr", "invented_detail"]))
    assert text.startswith(f"wrote 2 rows for 1 images to {tmp_path / 'o.csv'}: 2 ok, 0 missing, 0 error; 1 maps")
    assert "white = 0.05 or more" in text and "ScoreSummary" not in text
