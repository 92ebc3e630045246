"""Generators of good, awkward and bad image files, shared by every test of bad input.

Each writer takes a path, writes one file there and returns the path. ``BAD_CASES`` maps a case name to
(writer, file name, a phrase the :class:`qa.errors.BadImageError` message must contain); ``GOOD_CASES`` maps a
case name to (writer, file name, the expected float RGB pixels (H, W, 3) in [0, 1] computed here independently of
qa, a phrase its loading notes must contain ("" for no notes, None for unchecked), and the tolerance).
:func:`make_image_zoo` writes them all into a folder.

Import as ``from tests.refset.bad_images import BAD_CASES, GOOD_CASES, make_image_zoo``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 (over type + data)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes) -> bytes:
    """A PNG file from its header fields and the (already compressed) IDAT payload, built byte by byte."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def textured_rgb(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Deterministic uint8 (H, W, 3) test pattern: gradients plus noise (compresses poorly, like a photo)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], axis=-1)
    return np.clip(base + rng.integers(-40, 41, base.shape), 0, 255).astype(np.uint8)


# ---- good (or awkward but readable) files ------------------------------------------------------------------


def write_rgb_png(path: Path, seed: int = 0) -> Path:
    """Plain 8-bit RGB PNG, 64x48."""
    Image.fromarray(textured_rgb(seed=seed), mode="RGB").save(path, format="PNG")
    return path


def expected_rgb(seed: int = 0) -> np.ndarray:
    return textured_rgb(seed=seed).astype(np.float32) / 255.0


def write_rgb_jpeg(path: Path, seed: int = 3) -> Path:
    """Baseline JPEG, 64x48 (lossy: compare loosely)."""
    Image.fromarray(textured_rgb(seed=seed), mode="RGB").save(path, format="JPEG", quality=95)
    return path


GRAY = (np.arange(40 * 32).reshape(40, 32) * 7 % 256).astype(np.uint8)


def write_gray_png(path: Path) -> Path:
    """8-bit grayscale (mode L) PNG, 32x40."""
    Image.fromarray(GRAY, mode="L").save(path, format="PNG")
    return path


def expected_gray() -> np.ndarray:
    return np.repeat(GRAY[..., None].astype(np.float32) / 255.0, 3, axis=2)


GRAY16 = (np.arange(24 * 20, dtype=np.uint32).reshape(24, 20) * 137 % 65536).astype(np.uint16)


def write_gray16_png(path: Path) -> Path:
    """16-bit grayscale PNG (Pillow mode I;16), 20x24, values spread over 0..65535."""
    Image.fromarray(GRAY16).save(path, format="PNG")
    return path


def expected_gray16() -> np.ndarray:
    return np.repeat(GRAY16[..., None].astype(np.float64) / 65535.0, 3, axis=2).astype(np.float32)


RGB16 = (np.arange(18 * 20 * 3, dtype=np.uint32).reshape(18, 20, 3) * 997 % 65536).astype(np.uint16)


def write_rgb16_png(path: Path) -> Path:
    """16-bit-per-channel RGB PNG (colour type 2, depth 16), 20x18, written byte by byte."""
    rows = b"".join(b"\x00" + RGB16[y].astype(">u2").tobytes() for y in range(RGB16.shape[0]))
    path.write_bytes(raw_png(RGB16.shape[1], RGB16.shape[0], 16, 2, zlib.compress(rows)))
    return path


def expected_rgb16() -> np.ndarray:
    """Exact 16-bit values / 65535 (a reader that keeps only the high byte is within 1/255 of this)."""
    return (RGB16.astype(np.float64) / 65535.0).astype(np.float32)


RGBA = np.concatenate([textured_rgb(40, 36, seed=5), (np.arange(40 * 36).reshape(40, 36, 1) % 256)
                       .astype(np.uint8)], axis=2)


def write_rgba_png(path: Path) -> Path:
    """8-bit RGBA PNG, 36x40, alpha ramping 0..255."""
    Image.fromarray(RGBA, mode="RGBA").save(path, format="PNG")
    return path


def expected_rgba_on_white() -> np.ndarray:
    """Alpha compositing onto white: rgb * a + 1 * (1 - a), in [0, 1]."""
    rgb = RGBA[..., :3].astype(np.float64) / 255.0
    a = RGBA[..., 3:].astype(np.float64) / 255.0
    return (rgb * a + (1.0 - a)).astype(np.float32)


PALETTE = np.array([[255, 0, 0], [0, 128, 0], [0, 0, 255], [250, 250, 10]], dtype=np.uint8)
PALETTE_INDEX = (np.arange(30 * 28).reshape(30, 28) // 7 % 4).astype(np.uint8)


def write_palette_png(path: Path) -> Path:
    """Palette (mode P) PNG with 4 colours, 28x30."""
    img = Image.fromarray(PALETTE_INDEX, mode="P")
    img.putpalette(PALETTE.flatten().tolist())
    img.save(path, format="PNG")
    return path


def expected_palette() -> np.ndarray:
    return PALETTE[PALETTE_INDEX].astype(np.float32) / 255.0


def write_palette_transparent_png(path: Path) -> Path:
    """Palette PNG whose colour index 0 is fully transparent (tRNS), 28x30."""
    img = Image.fromarray(PALETTE_INDEX, mode="P")
    img.putpalette(PALETTE.flatten().tolist())
    img.save(path, format="PNG", transparency=0)
    return path


def expected_palette_transparent() -> np.ndarray:
    out = expected_palette()
    out[PALETTE_INDEX == 0] = 1.0  # transparent -> white
    return out


def write_animated_gif(path: Path) -> Path:
    """Two-frame GIF, 32x32 (first frame used)."""
    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8), mode="RGB") for v in (40, 200)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return path


def write_jpeg_named_png(path: Path) -> Path:
    """A JPEG file with a .png name (content decides, not the name)."""
    return write_rgb_jpeg(path, seed=4)


# ---- bad files -----------------------------------------------------------------------------------------------


def write_truncated_png(path: Path) -> Path:
    """A 64x48 RGB PNG cut at 60% of its bytes (inside IDAT)."""
    write_rgb_png(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def write_truncated_jpeg(path: Path) -> Path:
    """A JPEG cut at half its bytes."""
    write_rgb_jpeg(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_text_as_png(path: Path) -> Path:
    """A text file named .png."""
    path.write_text("this is not an image, only text with a .png name\n", encoding="utf-8")
    return path


def write_empty_png(path: Path) -> Path:
    """A zero-byte .png file."""
    path.write_bytes(b"")
    return path


def write_header_only_png(path: Path) -> Path:
    """Only the 8-byte PNG signature."""
    path.write_bytes(PNG_SIGNATURE)
    return path


def write_corrupt_idat_png(path: Path) -> Path:
    """A 64x48 PNG whose compressed pixel stream is garbled mid-way (chunk CRC recomputed, so only zlib fails).

    (A wrong IDAT CRC alone is not detected by Pillow and leaves the pixels intact, so it is not a bad case.)
    """
    write_rgb_png(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4:start])[0]
    middle = start + 4 + length // 2
    for k in range(middle, middle + 16):
        data[k] ^= 0x5A
    crc = zlib.crc32(bytes(data[start:start + 4 + length])) & 0xFFFFFFFF
    data[start + 4 + length:start + 8 + length] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def write_one_pixel_png(path: Path) -> Path:
    """A valid 1x1 RGB PNG (too small to score)."""
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path, format="PNG")
    return path


def write_thin_png(path: Path) -> Path:
    """A valid 200x15 PNG: one side below the 16-pixel minimum."""
    Image.new("RGB", (200, 15), (90, 90, 90)).save(path, format="PNG")
    return path


def write_bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A decompression bomb: the header declares width x height 8-bit gray; the file is ~100 bytes.

    The IDAT holds a few compressed rows of zeros, so the file is a valid start of such an image.
    """
    rows = zlib.compress(b"\x00" * (width + 1) * 2, 9)
    path.write_bytes(raw_png(width, height, 8, 0, rows))
    return path


def write_nan_tiff(path: Path) -> Path:
    """A 32x32 float32 TIFF (mode F) containing NaN and Inf."""
    arr = np.full((32, 32), 0.5, dtype=np.float32)
    arr[3, 4] = np.nan
    arr[10, 10] = np.inf
    Image.fromarray(arr, mode="F").save(path, format="TIFF")
    return path


Writer = Callable[[Path], Path]

#: name -> (writer, file name, phrase the BadImageError message must contain)
BAD_CASES: dict[str, tuple[Writer, str, str]] = {
    "truncated_png": (write_truncated_png, "truncated.png", "truncated"),
    "truncated_jpeg": (write_truncated_jpeg, "truncated.jpg", "truncated"),
    "text_as_png": (write_text_as_png, "notes.png", "not a recognised image"),
    "empty_png": (write_empty_png, "empty.png", "not a recognised image"),
    "signature_only_png": (write_header_only_png, "signature.png", "not a recognised image"),
    "corrupt_idat_png": (write_corrupt_idat_png, "corrupt_idat.png", "corrupt"),
    "one_pixel": (write_one_pixel_png, "one_pixel.png", "smaller than the minimum side"),
    "thin": (write_thin_png, "thin.png", "smaller than the minimum side"),
    "bomb_30000": (write_bomb_png, "bomb.png", "decompression bomb"),
    "nan_tiff": (write_nan_tiff, "nan.tif", "nan"),
}

#: name -> (writer, file name, expected pixels (or None), phrase the loading notes must contain ("" for no
#: notes, None for not checked), atol)
GOOD_CASES: dict[str, tuple[Writer, str, Callable[[], np.ndarray] | None, str | None, float]] = {
    "rgb_png": (write_rgb_png, "rgb.png", expected_rgb, "", 0.0),
    "rgb_jpeg": (write_rgb_jpeg, "photo.jpg", None, "", 0.0),
    "jpeg_named_png": (write_jpeg_named_png, "really_a_jpeg.png", None, "", 0.0),
    "gray_png": (write_gray_png, "gray.png", expected_gray, "grayscale", 0.0),
    "gray16_png": (write_gray16_png, "gray16.png", expected_gray16, "scaled by 1/65535", 1e-6),
    "rgb16_png": (write_rgb16_png, "rgb16.png", expected_rgb16, None, 1.0 / 255.0 + 1e-6),
    "rgba_png": (write_rgba_png, "rgba.png", expected_rgba_on_white, "alpha flattened onto white", 1e-6),
    "palette_png": (write_palette_png, "palette.png", expected_palette, "palette expanded", 0.0),
    "palette_transparent_png": (write_palette_transparent_png, "palette_trns.png", expected_palette_transparent,
                                "alpha flattened", 1e-6),
    "animated_gif": (write_animated_gif, "anim.gif", None, "first frame", 0.0),
}


def make_image_zoo(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Write every good and bad case into ``folder``; returns ({good name: path}, {bad name: path})."""
    folder.mkdir(parents=True, exist_ok=True)
    good = {name: writer(folder / fname) for name, (writer, fname, *_rest) in GOOD_CASES.items()}
    bad = {name: writer(folder / fname) for name, (writer, fname, _phrase) in BAD_CASES.items()}
    return good, bad
