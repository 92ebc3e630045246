"""Thumbnails and maps are encoded at the size stored: the float pixels are area-reduced before the 8-bit
conversion, which gives what PIL's thumbnail of the full 8-bit image gives to within a level or two."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from qa.imageio import png_bytes, to_uint8


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.int16)


@pytest.mark.parametrize("shape", [(1300, 1000, 3), (1024, 700)])
def test_thumbnail_matches_full_size_conversion(shape: tuple[int, ...]) -> None:
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
    img = np.asarray(photo, dtype=np.float32) / 255.0
    img = img if len(shape) == 3 else np.ascontiguousarray(img[..., 1])
    old = Image.fromarray(to_uint8(img))
    old.thumbnail((160, 160), Image.Resampling.BOX)
    got = _decode(png_bytes(img, 160))
    assert got.shape == np.asarray(old).shape
    diff = np.abs(got - np.asarray(old, dtype=np.int16))
    assert diff.mean() < 0.5 and diff.max() <= 2  # rounded once (float reduction) rather than twice


def test_scale_non_finite_values_and_small_images() -> None:
    m = np.full((800, 800), 0.02, np.float32)
    m[10, 10] = np.nan
    m[500, 500] = np.inf
    got = _decode(png_bytes(m, 160, scale=1 / 0.04))  # 0.02 at a full scale of 0.04: mid grey
    assert got.shape == (160, 160)
    assert np.all(np.abs(got - 128) <= 2) or np.median(got) == 128
    small = np.full((20, 30, 3), 0.5, np.float32)
    assert _decode(png_bytes(small, 160)).shape == (20, 30, 3)
    assert np.array_equal(to_uint8(np.array([np.nan, -1.0, 0.5, 2.0], np.float32)), np.array([0, 0, 128, 255]))
