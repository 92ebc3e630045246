"""16-bit colour PNGs and deep TIFFs at full precision.

Pillow reads a 16-bit RGB, RGBA or grey + alpha PNG as 8 bits per channel, keeping the high byte (every value
rounded down: two images less than one 8-bit level apart read as equal, a 16-bit reference against its correctly
rounded 8-bit export loses 5 dB of PSNR). :func:`decode_png16` reads such a file itself: the image data inflated
(bounded by the header's size), each row's filter undone (the PNG specification's None, Sub, Up, Average and
Paeth), the big-endian samples as uint16. It takes non-interlaced files only; others stay with Pillow (and a
note says so). :func:`samples_to_rgb` turns these samples, and those of :mod:`qa.deep_tiff`, into qa's float RGB
(alpha and colour-key pixels flattened onto white).
"""

from __future__ import annotations

import zlib

import numpy as np
from numba import njit

from qa.png_rows import CHANNELS, png_chunks

#: PNG colour types read here (RGB, grey + alpha, RGBA: what Pillow reduces to 8 bits; 16-bit grey it reads whole)
COLOUR_TYPES = (2, 4, 6)


@njit(cache=True)
def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int, out: np.ndarray) -> bool:
    """Undo the row filters of ``raw`` (filter byte + ``stride - 1`` bytes per row) into ``out`` (height, stride -
    1) uint8; ``bpp``: bytes per pixel. False for an unknown filter type."""
    width = stride - 1
    for y in range(height):
        ft = raw[y * stride]
        base = y * stride + 1
        for x in range(width):
            a = np.int32(out[y, x - bpp]) if x >= bpp else np.int32(0)
            b = np.int32(out[y - 1, x]) if y > 0 else np.int32(0)
            c = np.int32(out[y - 1, x - bpp]) if (y > 0 and x >= bpp) else np.int32(0)
            v = np.int32(raw[base + x])
            if ft == 0:
                r = v
            elif ft == 1:
                r = v + a
            elif ft == 2:
                r = v + b
            elif ft == 3:
                r = v + ((a + b) >> 1)
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                r = v + (a if (pa <= pb and pa <= pc) else (b if pb <= pc else c))
            else:
                return False
            out[y, x] = np.uint8(r & 255)
    return True


def decode_png16(data: bytes) -> np.ndarray | None:
    """The samples of a non-interlaced 16-bit RGB, grey + alpha or RGBA PNG file as an (H, W, C) uint16 array
    (C: 3, 2 or 4); None for any other file, or one whose data cannot be read here (Pillow's reading stands)."""
    header, idat, _ = png_chunks(data)
    if header is None or not idat:
        return None
    width, height, depth, colour, _, _, interlace = header
    if depth != 16 or colour not in COLOUR_TYPES or interlace != 0 or width == 0 or height == 0:
        return None
    channels = CHANNELS[colour]
    bpp = 2 * channels
    stride = 1 + width * bpp
    try:
        raw = zlib.decompressobj().decompress(idat, stride * height)
    except zlib.error:
        return None
    if len(raw) < stride * height:
        return None
    out = np.empty((height, stride - 1), np.uint8)
    if not _unfilter(np.frombuffer(raw, np.uint8), height, stride, bpp, out):
        return None
    return out.view(">u2").reshape(height, width, channels).astype(np.uint16)


def read_png16(data: bytes, key: object = None) -> tuple[np.ndarray, list[str]] | None:
    """A 16-bit RGB, RGBA or grey + alpha PNG at full precision as float32 RGB in [0, 1] (alpha, and pixels equal to
    the colour key ``key``, Pillow's ``info["transparency"]`` in 16-bit units, flattened onto white) with its notes;
    None for any other file, or one with an ICC profile or an orientation (Pillow's path applies those, at 8 bits,
    and says so)."""
    header, _, kinds = png_chunks(data)
    if header is None or header[2] != 16 or header[3] not in COLOUR_TYPES or {b"iCCP", b"eXIf"} & kinds:
        return None
    samples = decode_png16(data)
    if samples is None:
        return None
    keyed = None
    if isinstance(key, tuple) and samples.shape[2] == 3:
        keyed = (samples == np.asarray(key, np.uint16)).all(axis=2)
    alpha = "straight" if samples.shape[2] in (2, 4) else ""
    return samples_to_rgb(samples / 65535.0, ["16-bit PNG read at full precision"], alpha, keyed)


def samples_to_rgb(values: np.ndarray, notes: list[str], alpha: str = "", keyed: np.ndarray | None = None
                   ) -> tuple[np.ndarray, list[str]]:
    """(H, W, C) samples in [0, 1] (C: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) as float32 RGB, alpha flattened onto
    white; ``alpha``: "straight", "premultiplied" or "" (no alpha channel); ``keyed``: (H, W) bool, colour-key
    pixels made white. Returns the pixels and ``notes`` plus what was done."""
    notes = list(notes)
    has_alpha = bool(alpha) and values.shape[2] in (2, 4)
    colour, opacity = (values[..., :-1], values[..., -1:]) if has_alpha else (values, None)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
        notes.append("grayscale replicated to RGB")
    if opacity is not None:
        colour = (colour if alpha == "premultiplied" else colour * opacity) + (1.0 - opacity)
        notes.append("alpha flattened onto white")
    if keyed is not None and keyed.any():
        colour = np.where(keyed[..., None], 1.0, colour)
        notes.append(f"colour key (tRNS): {int(keyed.sum())} transparent pixel(s) flattened onto white")
    return colour.astype(np.float32), notes
