"""qa.imageio.load_image on bad and awkward files: every bad one raises BadImageError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.errors import BadImageError, QAError
from qa.imageio import decode_image_bytes, load_image
from tests.refset.bad_images import BAD_CASES, GOOD_CASES, write_bomb_png, write_rgb_png


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_file_raises_bad_image_error_naming_the_file(tmp_path: Path, case: str) -> None:
    writer, fname, phrase = BAD_CASES[case]
    path = writer(tmp_path / fname)
    with pytest.raises(BadImageError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message, message
    assert phrase.lower() in message.lower(), message
    assert isinstance(info.value, QAError)


@pytest.mark.parametrize("case", sorted(GOOD_CASES))
def test_awkward_but_valid_file_loads_as_float_rgb(tmp_path: Path, case: str) -> None:
    writer, fname, expected, note, atol = GOOD_CASES[case]
    loaded = load_image(writer(tmp_path / fname))
    px = loaded.pixels
    assert px.dtype == np.float32 and px.ndim == 3 and px.shape[2] == 3
    assert np.isfinite(px).all() and px.min() >= 0.0 and px.max() <= 1.0
    if expected is not None:
        want = expected()
        assert px.shape == want.shape
        np.testing.assert_allclose(px, want, rtol=0, atol=atol)
    if note:
        assert any(note in n for n in loaded.notes), loaded.notes
    elif note == "":
        assert loaded.notes == ()


def test_bomb_file_is_tiny_and_refused_before_decoding(tmp_path: Path) -> None:
    path = write_bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1024  # the header declares 30000x30000 = 9e8 pixels
    with pytest.raises(BadImageError, match="decompression bomb"):
        load_image(path)


def test_qa_pixel_budget_applies_below_pillows_limit(tmp_path: Path) -> None:
    path = write_bomb_png(tmp_path / "big.png", width=3000, height=2000)
    with pytest.raises(BadImageError) as info:
        load_image(path, max_pixels=1_000_000)
    assert "3000x2000" in str(info.value) and str(path) in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "gone.png"
    with pytest.raises(BadImageError, match="not found") as info:
        load_image(missing)
    assert str(missing) in str(info.value)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(BadImageError) as info:
        load_image(folder)
    assert str(folder) in str(info.value)


def test_decode_bytes_uses_the_given_name(tmp_path: Path) -> None:
    data = write_rgb_png(tmp_path / "ok.png").read_bytes()
    with pytest.raises(BadImageError, match="upload #3"):
        decode_image_bytes(data[: len(data) // 2], name="upload #3")


def test_file_hash_is_of_the_bytes(tmp_path: Path) -> None:
    import hashlib

    path = write_rgb_png(tmp_path / "ok.png")
    assert load_image(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
