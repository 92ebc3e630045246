"""Deep TIFFs at full precision: what Pillow reads at 8 bits or not at all.

Pillow reduces 16-bit RGB(A) TIFFs to 8 bits (the high byte kept: every value rounded down, a near-lossless pair
loses about 2 dB of PSNR) and cannot open float RGB(A) or 16-bit grey + alpha TIFFs. :func:`deep_tiff` recognises
those from the header and :func:`read_deep_tiff` reads their first page with tifffile; a file it cannot decode
is refused, never read at 8 bits. :func:`qa.png16.samples_to_rgb` makes qa's float RGB of the samples.
"""

from __future__ import annotations

import io
import lzma
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import tifffile

from qa.errors import BadImageError

#: the first 4 bytes of a TIFF or BigTIFF file (little- and big-endian)
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
#: numpy views showing an image upright for each TIFF/EXIF orientation (as ``ImageOps.exif_transpose``)
_UPRIGHT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
            6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


@dataclass(frozen=True)
class DeepTiff:
    """The first page of a TIFF that Pillow would read at 8 bits or not at all: 16-bit unsigned RGB(A) or
    grey + alpha, float RGB(A) or grey + alpha, or 16/64-bit float grey. ``alpha``: as :func:`samples_to_rgb`; ``orientation``: the
    TIFF Orientation tag (1 = as stored); ``pages``: pages in the file; ``icc``: whether it embeds an ICC profile."""

    width: int
    height: int
    is_float: bool
    alpha: str
    orientation: int
    pages: int
    icc: bool
    mode: str


def deep_tiff(data: bytes) -> DeepTiff | None:
    """The header of a deep TIFF (:class:`DeepTiff`, nothing decoded); None for any other file, and for one tifffile
    cannot parse (Pillow then reads or refuses it)."""
    if data[:4] not in TIFF_MAGIC:
        return None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page, pages = tif.pages[0], len(tif.pages)
            if not isinstance(page, tifffile.TiffPage):
                return None
            colour = {1: 1, 2: 3}.get(int(page.photometric))  # MINISBLACK, RGB
            samples, bits, fmt = page.samplesperpixel, page.bitspersample, int(page.sampleformat)
            extra = tuple(int(e) for e in page.extrasamples)
            turn = page.tags.get(274)  # Orientation
            orientation = int(turn.value) if turn is not None else 1
            icc = page.tags.get(34675) is not None  # InterColorProfile
            width, height = page.imagewidth, page.imagelength
    except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError, TypeError, struct.error):
        return None
    is_float = fmt == 3 and bits in (16, 32, 64)
    if colour is None or samples < colour or not (is_float or (fmt == 1 and bits == 16)):
        return None
    if colour == 1 and (samples == 1 or not extra) and not (is_float and bits != 32):
        return None  # 16-bit or 32-bit float grey: Pillow reads it whole
    alpha = {1: "premultiplied", 2: "straight"}.get(extra[0], "") if extra and samples > colour else ""
    mode = ("RGB" if colour == 3 else "L") + ("A" if alpha else "") + (";F" if is_float else ";16")
    return DeepTiff(width, height, is_float, alpha, orientation, pages, icc, mode)


def read_deep_tiff(data: bytes, info: DeepTiff, name: str) -> np.ndarray:
    """The first page of a :func:`deep_tiff` file as float64 (H, W, C), upright, colour then alpha channels (C: 2
    or 4; an unspecified extra channel is dropped): 16-bit samples by 1/65535, float samples as stored.
    :class:`BadImageError` naming ``name`` when tifffile cannot decode it (truncated, or a compression it needs
    imagecodecs for): qa never reads such a file at 8 bits."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            arr, axes = page.asarray(), page.axes
    except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError, TypeError, NotImplementedError,
            RuntimeError, struct.error, zlib.error, lzma.LZMAError) as exc:
        kind = "float" if info.is_float else "16-bit"
        raise BadImageError(
            f"{name}: {kind} {info.mode.split(';')[0]} TIFF cannot be decoded at full precision ({exc})",
            "re-save it uncompressed or with Deflate (zip) compression, or as a 16-bit PNG (e.g. `magick in.tif "
            "out.png`); for LZW/JPEG/other codecs, `pip install imagecodecs` lets tifffile read it") from exc
    if "S" in axes:
        arr = np.moveaxis(arr, axes.index("S"), -1)
    elif axes == "YX":
        arr = arr[..., None]
    keep = (3 if info.mode.startswith("RGB") else 1) + bool(info.alpha)
    if arr.ndim != 3 or arr.shape[:2] != (info.height, info.width) or arr.shape[2] < keep:
        raise BadImageError(f"{name}: TIFF page of shape {arr.shape} {axes} is not an image of "
                            f"{info.width}x{info.height}", "re-save it as a plain RGB(A) TIFF or PNG")
    values = arr[..., :keep].astype(np.float64)
    if not info.is_float:
        values /= 65535.0
    upright = _UPRIGHT.get(info.orientation)
    return np.ascontiguousarray(upright(values)) if upright is not None else values
