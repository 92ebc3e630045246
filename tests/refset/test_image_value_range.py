"""Float (mode F) and 32-bit integer (mode I) images on another scale than qa's [0, 1] (audit F5): refused with the
range found and what to do, never clipped silently; a little overshoot is clipped with a note saying how much."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qa.engine.decoder_contract import RANGE_TOLERANCE
from qa.errors import BadImageError
from qa.imageio import CLIP_TOLERANCE, load_image


def _gray(height: int = 32, width: int = 48) -> np.ndarray:
    """A (H, W) float64 ramp in [0, 1] with every value distinct enough to be counted."""
    yy, xx = np.mgrid[0:height, 0:width]
    return (xx + yy * width) / float(height * width - 1)


def _tiff(path: Path, arr: np.ndarray) -> Path:
    """``arr`` (H, W) as a TIFF: float32 -> mode F, int32 -> mode I, uint16 -> mode I;16."""
    Image.fromarray(arr).save(path, format="TIFF")
    return path


def _expected_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray.astype(np.float32)[..., None], 3, axis=2)


def test_float_0_255_is_refused_with_the_range_and_what_to_do(tmp_path: Path) -> None:
    path = _tiff(tmp_path / "f255.tif", (_gray() * 255).astype(np.float32))
    with pytest.raises(BadImageError) as exc:
        load_image(path)
    msg = str(exc.value)
    assert "f255.tif" in msg and "[0, 255]" in msg and "another scale" in msg
    assert "8- or 16-bit" in msg and "0..1" in msg


def test_float_in_range_is_read_exactly_and_says_nothing_was_clipped(tmp_path: Path) -> None:
    gray = _gray()
    img = load_image(_tiff(tmp_path / "f1.tif", gray.astype(np.float32)))
    np.testing.assert_array_equal(img.pixels, _expected_rgb(gray))
    assert img.notes == ("float image read as [0, 1] (nothing outside it)",)


def test_a_little_overshoot_is_clipped_and_the_note_says_how_much(tmp_path: Path) -> None:
    gray = _gray() * 0.9 + 0.05
    gray[0, :4] = [1.02, 1.01, -0.01, -0.02]  # 4 of 1536 values a few levels past black and white
    img = load_image(_tiff(tmp_path / "over.tif", gray.astype(np.float32)))
    np.testing.assert_array_equal(img.pixels, _expected_rgb(np.clip(gray.astype(np.float32), 0, 1)))
    (note,) = img.notes
    assert "4 of 1536 (0.26%) outside [0, 1]" in note and "[-0.02, 1.02]" in note and "clipped" in note


@pytest.mark.parametrize(("gap", "refused"), [(0.049, False), (0.051, True)])
def test_the_tolerance_is_the_rms_change_clipping_makes(tmp_path: Path, gap: float, refused: bool) -> None:
    """A quarter of the pixels at 1 + d (the rest mid-grey): clipping changes the image by d * sqrt(1/4) RMS."""
    gray = np.full((32, 48), 0.5)
    gray[::2, ::2] = 1.0 + 2.0 * gap
    path = _tiff(tmp_path / "edge.tif", gray.astype(np.float32))
    if refused:
        with pytest.raises(BadImageError, match=r"by 0\.051 RMS, more than the 0\.05 allowed"):
            load_image(path)
    else:
        assert "(25.00%) outside [0, 1] clipped" in load_image(path).notes[0]


def test_float_tolerance_is_the_decoder_output_rule() -> None:
    assert CLIP_TOLERANCE == RANGE_TOLERANCE


def test_float_with_inf_only_is_refused_not_clipped_to_white(tmp_path: Path) -> None:
    gray = _gray().astype(np.float32)
    gray[3, 4] = np.inf
    with pytest.raises(BadImageError, match="NaN or Inf"):
        load_image(_tiff(tmp_path / "inf.tif", gray))


@pytest.mark.parametrize(("values", "shown"), [
    (np.arange(32 * 48, dtype=np.int32).reshape(32, 48) * 1000, "[0, 1535000]"),
    (np.arange(32 * 48, dtype=np.int32).reshape(32, 48) - 100, "[-100, 1435]"),
])
def test_integer_values_outside_16_bits_are_refused(tmp_path: Path, values: np.ndarray, shown: str) -> None:
    path = _tiff(tmp_path / "i32.tif", values)
    assert Image.open(path).mode == "I"
    with pytest.raises(BadImageError) as exc:
        load_image(path)
    msg = str(exc.value)
    assert "i32.tif" in msg and shown in msg and "0..65535" in msg and "8- or 16-bit unsigned" in msg


@pytest.mark.parametrize(("top", "scale", "why"), [(40000, 65535, "read as 16-bit"), (200, 255, "read as 8-bit")])
def test_integer_scale_is_stated_and_nothing_is_clipped(tmp_path: Path, top: int, scale: int, why: str) -> None:
    values = np.linspace(0, top, 32 * 48).round().astype(np.int32).reshape(32, 48)
    img = load_image(_tiff(tmp_path / "i.tif", values))
    np.testing.assert_allclose(img.pixels, _expected_rgb(values / scale), rtol=0, atol=1e-7)
    (note,) = img.notes
    assert f"scaled by 1/{scale}" in note and why in note and str(top) in note


def test_16_bit_tiff_keeps_full_precision(tmp_path: Path) -> None:
    values = np.linspace(0, 65535, 32 * 48).round().astype(np.uint16).reshape(32, 48)
    path = _tiff(tmp_path / "u16.tif", values)
    assert Image.open(path).mode.startswith("I;16")
    img = load_image(path)
    np.testing.assert_allclose(img.pixels, _expected_rgb(values / 65535.0), rtol=0, atol=1e-7)
    assert "scaled by 1/65535 (16-bit)" in img.notes[0]
