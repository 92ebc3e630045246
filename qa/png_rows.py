"""Whether a PNG holds every row its header declares.

Pillow decodes a PNG whose compressed image data ends cleanly before the last row (a file cut after a complete
zlib stream, or written by a broken encoder) without a word: the missing rows come back black, and every metric
would score them as the decoder's or the reference's pixels. :func:`missing_rows` inflates the image data once
more (bounded by what the header declares, so it is no decompression bomb) and counts the bytes against the
header's rows.
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: samples per pixel of each PNG colour type (grey, RGB, palette, grey + alpha, RGBA)
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7 passes: (first row, first column, row step, column step)
ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))


def _row_bytes(width: int, bits_per_pixel: int) -> int:
    """Bytes of one filtered row: its filter byte plus its packed samples."""
    return 1 + (width * bits_per_pixel + 7) // 8


def expected_bytes(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> list[int]:
    """Inflated bytes at the end of each row (of each Adam7 pass's rows, in file order), cumulative."""
    ends: list[int] = []
    total = 0
    passes = ADAM7 if interlaced else ((0, 0, 1, 1),)
    for y0, x0, dy, dx in passes:
        cols = (width - x0 + dx - 1) // dx if width > x0 else 0
        rows = (height - y0 + dy - 1) // dy if height > y0 else 0
        if cols == 0:
            continue
        for _ in range(rows):
            total += _row_bytes(cols, bits_per_pixel)
            ends.append(total)
    return ends


def png_chunks(data: bytes) -> tuple[tuple[int, ...] | None, bytes, set[bytes]]:
    """(IHDR fields (width, height, depth, colour type, compression, filter, interlace) or None, the image data
    of every IDAT chunk joined, the kinds of every chunk) of a PNG file; (None, b"", set()) for no PNG."""
    if not data.startswith(PNG_SIGNATURE):
        return None, b"", set()
    pos, header, idat, kinds = len(PNG_SIGNATURE), None, bytearray(), set()
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        kinds.add(kind)
        if kind == b"IHDR" and len(chunk) >= 13:
            header = struct.unpack(">IIBBBBB", chunk[:13])
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
        pos += 12 + length
    return header, bytes(idat), kinds


def missing_rows(data: bytes) -> str:
    """'' when ``data`` (a whole PNG file) holds every row its header declares, or is no PNG, or cannot be parsed
    here (Pillow reports those); else what is missing, e.g. "its image data ends after 2 of 64 rows"."""
    header, idat, _ = png_chunks(data)
    if header is None or not idat:
        return ""
    width, height, depth, colour, _, _, interlace = header
    if colour not in CHANNELS or depth not in (1, 2, 4, 8, 16):
        return ""
    ends = expected_bytes(width, height, CHANNELS[colour] * depth, interlace == 1)
    if not ends:
        return ""
    try:
        raw = zlib.decompressobj().decompress(idat, ends[-1])
    except zlib.error:
        return ""  # corrupt data: Pillow says so
    if len(raw) >= ends[-1]:
        return ""
    whole = sum(1 for e in ends if e <= len(raw))
    return f"its image data ends after {whole} of {len(ends)} rows" + (" (Adam7 passes)" if interlace == 1 else "")
