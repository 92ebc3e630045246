"""The photos-* splits of the planted benchmark: the new kinds do what their docstrings say, the split fails
clearly without its photos, and evaluate's new headline numbers (planted above the highest benign pair, IoU over
region kinds) are computed as stated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from benchmarks.planted import local_kinds as K
from benchmarks.planted.cases import build, load_photo
from benchmarks.planted.evaluate import report


@pytest.fixture(scope="module")
def ref() -> np.ndarray:
    return np.ascontiguousarray(load_photo("astronaut")[100:356, 150:406])


def test_text_is_faint_and_inside_its_mask(ref: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    out, mask = K.text(ref, rng)
    diff = np.abs(out - ref).max(axis=2)
    assert 0.15 * mask.size > mask.sum() > 50                # a block of text, not the tile
    assert diff.max() <= 30 / 255 + 1e-6                   # faint: at most 30/255 of luma on each channel
    assert diff[~ndimage.binary_dilation(mask, iterations=3)].max() == 0  # ink only inside the line boxes


def test_object_is_colour_matched_and_warp_is_local(ref: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    source = load_photo("coffee")
    out, mask = K.inserted_object(ref, source, rng)
    ring = ndimage.binary_dilation(mask, iterations=8) & ~ndimage.binary_dilation(mask, iterations=3)
    assert np.abs(out[mask].mean(axis=0) - ref[ring].mean(axis=0)).max() < 0.06
    out, mask = K.warp(ref, np.random.default_rng(3))
    moved = np.abs(out - ref).max(axis=2) > 1e-4
    assert mask.any()
    assert not moved[~ndimage.binary_dilation(mask, iterations=60)].any()  # the displacement decays to 0


def test_whole_image_grating_is_weak_and_everywhere(ref: np.ndarray) -> None:
    flat = np.full_like(ref, 0.5)
    out = K.grating_all(flat, np.random.default_rng(4))
    d = out - flat
    assert 3 / 255 - 1e-6 <= np.abs(d).max() <= 5 / 255 + 1e-6
    assert (np.abs(d).max(axis=2) > 0).mean() > 0.5


def test_benign_codecs_decode_to_the_reference_size(ref: np.ndarray) -> None:
    kinds = dict(K.benign(ref, ref, np.random.default_rng(5)))
    assert {"webp", "jpeg420low", "shift", "noise", "grain"} <= set(kinds)
    for out in kinds.values():
        assert out.shape == ref.shape and out.dtype == np.float32


def test_photo_split_without_photos_says_how_to_fetch_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_PLANTED_PHOTOS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="benchmarks.planted.debian_photos"):
        build("photos-tune")


def test_report_counts_planted_above_the_highest_benign_and_skips_whole_image_kinds() -> None:
    region = np.zeros((8, 8), bool)
    region[:4, :4] = True
    full = np.ones((8, 8), bool)
    hit = np.where(region, 0.01, 0.0).astype(np.float32)

    def row(kind: str, group: str, value: float, peak: float, mask: np.ndarray, m: np.ndarray) -> dict[str, object]:
        return {"name": kind, "kind": kind, "group": group, "mask": mask, "map": m, "invented_detail": value,
                "invented_peak": peak, "lost_detail": 0.0, "distortion": 0.0, "psnr": 30.0, "ssim": 0.9}

    rows = [row("a", "planted", 0.5, 0.1, region, hit), row("b", "planted", 0.2, 0.6, region, hit),
            row("w", "planted", 0.1, 0.7, full, np.zeros((8, 8), np.float32)),
            row("n", "benign", 0.3, 0.5, np.zeros((8, 8), bool), np.zeros((8, 8), np.float32))]
    out = report(rows, threshold=0.005)
    assert out["above_benign"] == pytest.approx(1 / 3)      # only a is above the benign 0.3
    assert out["above_benign_invented_peak"] == pytest.approx(2 / 3)  # b and w are above the benign 0.5
    assert out["auroc_invented_peak"] == pytest.approx(2 / 3)
    assert out["mean_iou"] == pytest.approx(1.0)            # w (whole image) is not a region kind
