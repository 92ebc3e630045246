"""qa.imageio.load_image on bad and awkward files: every bad one raises BadImageError naming the file."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qa.errors import BadImageError, QAError
from qa.imageio import decode_image_bytes, load_image
from qa.png_rows import missing_rows
from tests.refset.bad_images import (
    BAD_CASES,
    GOOD_CASES,
    raw_png,
    textured_rgb,
    write_bomb_png,
    write_rgb_png,
)


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


def _rows_png(path: Path, width: int, height: int, rows: int) -> Path:
    """An RGB PNG whose zlib stream ends cleanly after ``rows`` rows of ``height`` (all rows when equal)."""
    pixels = textured_rgb(height, width)
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(rows))
    path.write_bytes(raw_png(width, height, 8, 2, zlib.compress(raw)))
    return path


@pytest.mark.parametrize(("rows", "loads"), [(48, True), (47, False), (2, False)])
def test_a_png_whose_data_ends_before_its_last_row_is_refused(tmp_path: Path, rows: int, loads: bool) -> None:
    """Audit 2026-12-07: Pillow reads a PNG whose compressed data ends cleanly after 2 of 64 rows as a whole image
    (the rest black), and a run scored it. Now it is a truncated file, named with the rows it holds."""
    path = _rows_png(tmp_path / "short.png", 64, 48, rows)
    if loads:
        assert load_image(path).pixels.shape == (48, 64, 3)
        return
    with pytest.raises(BadImageError, match=f"truncated PNG: its image data ends after {rows} of 48 rows"):
        load_image(path)


def test_every_png_pillow_writes_holds_its_rows() -> None:
    """The count agrees with Pillow's own encoder for every mode, bit depth and Adam7 interlacing."""
    pixels = textured_rgb(37, 53)
    images = [Image.fromarray(pixels), Image.fromarray(pixels).convert("L"), Image.fromarray(pixels).convert("1"),
              Image.fromarray(pixels).convert("P"), Image.fromarray(pixels).convert("RGBA"),
              Image.fromarray(pixels).convert("LA"), Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)]
    for img in images:
        for interlace in (False, True):
            buf = io.BytesIO()
            if interlace:
                data = _adam7(img)
            else:
                img.save(buf, format="PNG")
                data = buf.getvalue()
            assert missing_rows(data) == "", (img.mode, interlace)
            cut = _cut_stream(data)
            assert "ends after" in missing_rows(cut), (img.mode, interlace)


def _adam7(img: Image.Image) -> bytes:
    """``img`` as an Adam7-interlaced PNG (Pillow writes none; this re-packs its rows pass by pass)."""
    from qa.png_rows import ADAM7, CHANNELS

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    ihdr = bytearray(data[16:29])
    width, height, depth, colour = struct.unpack(">IIBB", bytes(ihdr[:10]))
    bpp = CHANNELS[colour] * depth
    idat = b"".join(data[p + 8:p + 8 + struct.unpack(">I", data[p:p + 4])[0]] for p in _chunks(data, b"IDAT"))
    raw = zlib.decompress(idat)
    stride = 1 + (width * bpp + 7) // 8
    bits = [np.unpackbits(np.frombuffer(raw[y * stride + 1:(y + 1) * stride], np.uint8))[:width * bpp]
            for y in range(height)]
    out = bytearray()
    for y0, x0, dy, dx in ADAM7:
        xs = list(range(x0, width, dx))
        if not xs:
            continue
        for y in range(y0, height, dy):
            row = np.concatenate([bits[y][x * bpp:(x + 1) * bpp] for x in xs])
            out += b"\x00" + np.packbits(row).tobytes()
    ihdr[12] = 1
    return raw_png_from(bytes(ihdr), zlib.compress(bytes(out)))


def raw_png_from(ihdr: bytes, idat: bytes) -> bytes:
    from tests.refset.bad_images import png_chunk

    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def _chunks(data: bytes, kind: bytes) -> list[int]:
    out, pos = [], 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        if data[pos + 4:pos + 8] == kind:
            out.append(pos)
        pos += 12 + length
    return out


def _cut_stream(data: bytes) -> bytes:
    """The same PNG with its image data re-compressed without its last inflated byte (a clean, short stream)."""
    ihdr = data[16:29]
    idat = b"".join(data[p + 8:p + 8 + struct.unpack(">I", data[p:p + 4])[0]] for p in _chunks(data, b"IDAT"))
    return raw_png_from(ihdr, zlib.compress(zlib.decompress(idat)[:-1]))


def test_a_pixel_limit_above_pillows_own_governs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit 2026-12-07: max_image_pixels above Pillow's 89.5 Mpx had no effect (Pillow refused first, without
    the hint). Now qa's limit decides: a 95 Mpx file under a limit of 100 Mpx is read (and here refused only as
    the truncated file it is); over a limit of 94 Mpx it is refused naming the size, the limit and the setting."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    path = write_bomb_png(tmp_path / "big.png", width=10000, height=9500)  # 95 Mpx, above Pillow's 89.5
    with pytest.raises(BadImageError, match="truncated PNG: its image data ends after 2 of 9500 rows"):
        load_image(path, max_pixels=100_000_000)
    with pytest.raises(BadImageError, match="95000000 pixels.* 94000000") as err:
        load_image(path, max_pixels=94_000_000)
    assert "max_image_pixels" in str(err.value)
