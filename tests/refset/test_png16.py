"""16-bit colour PNGs are read at full precision (metric audit 2026-12-07: Pillow keeps the high byte of a 16-bit
RGB, RGBA or grey + alpha PNG, so two images under one 8-bit level apart read as equal). The files here are
written by an encoder of this test (each of the PNG specification's five row filters), so the decoder is checked
against an independent writer, and against Pillow: its 8-bit reading is our high byte."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from qa.imageio import decode_image_bytes
from qa.png16 import decode_png16
from tests.refset.bad_images import PNG_SIGNATURE, png_chunk


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _encode(samples: np.ndarray, colour: int, filters: list[int]) -> bytes:
    """A 16-bit PNG of (H, W, C) uint16 ``samples``, row y filtered with ``filters[y % len(filters)]``."""
    h, w, ch = samples.shape
    rows = samples.astype(">u2").reshape(h, w * ch).view(np.uint8).reshape(h, -1).astype(int)
    bpp = 2 * ch
    out = bytearray()
    for y in range(h):
        ft = filters[y % len(filters)]
        out.append(ft)
        for x in range(rows.shape[1]):
            a = rows[y, x - bpp] if x >= bpp else 0
            b = rows[y - 1, x] if y else 0
            c = rows[y - 1, x - bpp] if y and x >= bpp else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ft]
            out.append((rows[y, x] - pred) % 256)
    ihdr = np.array([w, h], ">u4").tobytes() + bytes([16, colour, 0, 0, 0])
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(out))) + \
        png_chunk(b"IEND", b"")


@pytest.mark.parametrize(("colour", "channels"), [(2, 3), (6, 4), (4, 2)])
def test_every_row_filter_reads_back_exactly_and_pillow_agrees_on_the_high_byte(colour: int, channels: int) -> None:
    rng = np.random.default_rng(colour)
    samples = rng.integers(0, 65536, (23, 19, channels)).astype(np.uint16)
    data = _encode(samples, colour, [0, 1, 2, 3, 4])
    got = decode_png16(data)
    assert got is not None and np.array_equal(got, samples)
    eight = np.asarray(Image.open(io.BytesIO(data)))
    if channels == 2:  # Pillow reads grey + alpha as RGBA
        eight = eight[..., [0, 3]]
    assert np.array_equal(eight, (samples >> 8).astype(np.uint8))


def test_two_images_under_one_8_bit_level_apart_read_apart() -> None:
    """The audit's case: 16-bit RGB images 100/65535 apart read as equal through Pillow; now their difference is
    exact, and an alpha is flattened onto white as on the 8-bit path."""
    base = np.full((32, 32, 3), 30000, np.uint16)
    a = decode_image_bytes(_encode(base, 2, [0]))
    b = decode_image_bytes(_encode(base + 100, 2, [1]))
    assert "16-bit PNG read at full precision" in a.notes
    assert np.allclose(b.pixels - a.pixels, 100 / 65535, atol=1e-7)
    rgba = np.concatenate([base, np.full((32, 32, 1), 32768, np.uint16)], axis=2)
    c = decode_image_bytes(_encode(rgba, 6, [4]))
    want = 30000 / 65535 * (32768 / 65535) + (1 - 32768 / 65535)
    assert np.allclose(c.pixels, want, atol=1e-7) and "alpha flattened onto white" in c.notes


def test_files_it_does_not_read_stay_with_pillow() -> None:
    eight = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(eight, format="PNG")
    assert decode_png16(eight.getvalue()) is None
    assert decode_png16(b"not a png") is None


def test_qa_score_reads_16_bit_files_whole_and_says_how_it_read_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The audit's qa score case: 16-bit references and candidates 100/65535 apart score the PSNR of that
    difference (not of an 8-bit rounding), and each row says how its files were read."""
    import pandas as pd

    from qa.score import score_folders

    (tmp_path / "ref").mkdir()
    (tmp_path / "out").mkdir()
    base = np.full((32, 32, 3), 30000, np.uint16)
    (tmp_path / "ref" / "x.png").write_bytes(_encode(base, 2, [2]))
    (tmp_path / "out" / "x.png").write_bytes(_encode(base + 100, 2, [3]))
    score_folders(tmp_path / "ref", [tmp_path / "out"], tmp_path / "s.csv", metrics=["psnr"])
    row = pd.read_csv(tmp_path / "s.csv").iloc[0]
    assert row.value == pytest.approx(20 * np.log10(65535 / 100), abs=1e-4)
    assert "candidate read: 16-bit PNG read at full precision" in row.detail
    assert "reference read: 16-bit PNG read at full precision" in row.detail
