"""Image-loading findings of the s42 audit (1, 5, 6, 7, 8, 9), each checked against an independent reader.

* 16-bit RGB(A) TIFFs are read at full precision (tifffile's samples / 65535), never silently at Pillow's 8 bits; a
  16-bit TIFF tifffile cannot decode (LZW without imagecodecs) is refused, naming what to do.
* float RGB TIFFs are read with the range rules of float grey images.
* ICC profiles are applied to palette, grey + alpha and 16-bit grey images (Pillow ImageCms as the reference).
* tRNS colour keys on RGB and grey PNGs (8 and 16 bits) are transparency, flattened onto white (numpy ground truth).
* ``qa refset build`` takes every suffix load_image decodes and names every other file in a warning.
* docs/images.md states the loading conventions; a TIFF's orientation is applied with a note.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps, features

from qa.errors import BadImageError
from qa.imageio import decode_image_bytes
from qa.refset.build import IMAGE_SUFFIXES, build_reference_set

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(42)


def _tiff(arr: np.ndarray, **kw: object) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def _u16(h: int, w: int, c: int) -> np.ndarray:
    return (RNG.random((h, w, c)) * 65535).round().astype(np.uint16)


# ---- finding 1: 16-bit TIFF at full precision ------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_16bit_rgb_tiff_is_read_at_full_precision(compression: str | None) -> None:
    arr = _u16(20, 24, 3)
    data = _tiff(arr, photometric="rgb", compression=compression)
    truth = tifffile.imread(io.BytesIO(data)).astype(np.float64) / 65535.0
    loaded = decode_image_bytes(data, "rgb16.tif")
    assert np.abs(loaded.pixels - truth).max() < 1e-7  # float32 rounding only; 8 bits would be ~1/256 off
    assert loaded.notes == ("16-bit TIFF read at full precision",)


def test_16bit_tiff_alpha_planar_and_grey_alpha_match_tifffile() -> None:
    rgba = _u16(18, 20, 4)
    truth = tifffile.imread(io.BytesIO(_tiff(rgba, photometric="rgb", extrasamples=["unassalpha"]))) / 65535.0
    a = truth[..., 3:]
    want = truth[..., :3] * a + (1 - a)
    got = decode_image_bytes(_tiff(rgba, photometric="rgb", extrasamples=["unassalpha"]), "rgba16.tif")
    assert np.abs(got.pixels - want).max() < 1e-6 and "alpha flattened onto white" in got.notes
    premult = decode_image_bytes(_tiff(rgba, photometric="rgb", extrasamples=["assocalpha"]), "premult16.tif")
    assert np.abs(premult.pixels - (truth[..., :3] + (1 - a))).max() < 1e-6  # colour already times alpha
    planar = np.moveaxis(rgba[..., :3], -1, 0).copy()
    sep = decode_image_bytes(_tiff(planar, photometric="rgb", planarconfig="separate"), "planar16.tif")
    assert np.abs(sep.pixels - truth[..., :3]).max() < 1e-7
    la = rgba[..., :2]
    grey = decode_image_bytes(_tiff(la, photometric="minisblack", extrasamples=["unassalpha"]), "la16.tif")
    g, al = la[..., :1] / 65535.0, la[..., 1:] / 65535.0
    assert np.abs(grey.pixels - np.repeat(g * al + (1 - al), 3, axis=2)).max() < 1e-6


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_tiff_orientation_matches_pillow(orientation: int) -> None:
    """The 16-bit path turns the image as Pillow turns the same TIFF stored at 8 bits (Pillow as the reference)."""
    arr = _u16(18, 26, 3)
    tag = [(274, 3, 1, orientation, True)]
    loaded = decode_image_bytes(_tiff(arr, photometric="rgb", extratags=tag), "turned16.tif")
    with Image.open(io.BytesIO(_tiff((arr >> 8).astype(np.uint8), photometric="rgb", extratags=tag))) as im:
        pil = np.asarray(ImageOps.exif_transpose(im))
    assert loaded.pixels.shape == pil.shape
    assert np.array_equal((np.round(loaded.pixels.astype(np.float64) * 65535).astype(np.uint16) >> 8), pil)
    assert any(f"TIFF orientation {orientation} applied" in n for n in loaded.notes) == (orientation != 1)


def _lzw(data: bytes) -> bytes:
    """TIFF LZW (MSB first) with 9-bit codes only: enough for the short, repetitive strip of the test."""
    table = {bytes([i]): i for i in range(256)}
    codes, word = [256], b""
    for byte in data:
        grown = word + bytes([byte])
        if grown in table:
            word = grown
            continue
        codes.append(table[word])
        table[grown] = len(table) + 2
        word = bytes([byte])
    codes += [table[word], 257]
    assert len(table) + 2 < 510, "strip too varied for 9-bit codes"
    bits = "".join(format(c, "09b") for c in codes)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def test_16bit_tiff_tifffile_cannot_decode_is_refused_not_truncated() -> None:
    """An LZW 16-bit RGB TIFF (tifffile needs imagecodecs for it): Pillow reads it at 8 bits; qa refuses it."""
    arr = np.tile(np.array([[[1000, 30000, 65535], [2000, 30000, 0]]], np.uint16), (16, 8, 1))
    plain = _tiff(arr, photometric="rgb", rowsperstrip=16)
    with tifffile.TiffFile(io.BytesIO(plain)) as tif:
        offset, count = tif.pages.first.dataoffsets[0], tif.pages.first.databytecounts[0]
    packed = _lzw(plain[offset:offset + count])
    data = bytearray(plain[:offset] + packed)
    with tifffile.TiffFile(io.BytesIO(plain)) as tif:  # point the tags at the LZW strip
        for code, value in ((259, 5), (279, len(packed))):
            tag = tif.pages.first.tags[code]
            fmt = {3: "H", 4: "I"}[int(tag.dtype)]
            struct.pack_into("<" + fmt, data, tag.valueoffset, value)
    with Image.open(io.BytesIO(bytes(data))) as im:  # the file is valid: Pillow decodes it (at 8 bits)
        assert np.array_equal(np.asarray(im.convert("RGB")), (arr >> 8).astype(np.uint8))
    if _has_imagecodecs():  # tifffile decodes LZW then: read whole
        assert np.abs(decode_image_bytes(bytes(data), "lzw16.tif").pixels - arr / 65535.0).max() < 1e-7
        return
    with pytest.raises(BadImageError) as err:
        decode_image_bytes(bytes(data), "lzw16.tif")
    assert "full precision" in str(err.value) and "imagecodecs" in str(err.value)


def _has_imagecodecs() -> bool:
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return False
    return True


def test_truncated_16bit_tiff_is_refused() -> None:
    data = _tiff(_u16(40, 24, 3), photometric="rgb", rowsperstrip=8)
    with pytest.raises(BadImageError, match="trunc16.tif"):
        decode_image_bytes(data[: len(data) * 3 // 4], "trunc16.tif")


def test_16bit_tiff_with_icc_says_it_was_reduced() -> None:
    arr = _u16(20, 20, 3)
    loaded = decode_image_bytes(_tiff(arr, photometric="rgb", iccprofile=_rgb_profile(1.0)), "icc16.tif")
    assert any("16-bit RGB TIFF reduced to 8 bits" in n for n in loaded.notes), loaded.notes
    la = _u16(20, 20, 2)  # Pillow cannot open 16-bit grey + alpha: read whole, the profile named as not applied
    grey = decode_image_bytes(_tiff(la, photometric="minisblack", extrasamples=["unassalpha"],
                                    iccprofile=_grey_profile(1.0)), "la16icc.tif")
    assert "ICC profile not applied to a LA;16 TIFF: colours read as sRGB" in grey.notes


# ---- finding 5: float RGB TIFF ---------------------------------------------------------------------------------


def test_float_rgb_tiff_is_read_with_the_float_range_rules() -> None:
    arr = RNG.random((20, 22, 3)).astype(np.float32)
    data = _tiff(arr, photometric="rgb")
    loaded = decode_image_bytes(data, "f32.tif")
    assert np.array_equal(loaded.pixels, tifffile.imread(io.BytesIO(data)))
    assert "float image read as [0, 1] (nothing outside it)" in loaded.notes
    over = arr.copy()
    over[0, 0] = 1.02  # a little overshoot: clipped, with a note
    clipped = decode_image_bytes(_tiff(over, photometric="rgb"), "over.tif")
    assert clipped.pixels.max() == 1.0 and any("clipped to [0, 1]" in n for n in clipped.notes)
    with pytest.raises(BadImageError, match="another scale"):
        decode_image_bytes(_tiff(arr * 255, photometric="rgb"), "f255.tif")
    rgba = RNG.random((20, 22, 4)).astype(np.float32)
    flat = decode_image_bytes(_tiff(rgba, photometric="rgb", extrasamples=["unassalpha"]), "f32a.tif")
    a = rgba[..., 3:].astype(np.float64)
    assert np.abs(flat.pixels - (rgba[..., :3] * a + 1 - a)).max() < 1e-6


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_float_grey_tiff_of_other_widths_is_read(dtype: type) -> None:
    """Pillow reads 32-bit float grey only; 16- and 64-bit float grey go through tifffile."""
    arr = RNG.random((20, 22)).astype(dtype)
    loaded = decode_image_bytes(_tiff(arr, photometric="minisblack"), "grey.tif")
    truth = np.repeat(arr[..., None].astype(np.float32), 3, axis=2)
    assert np.array_equal(loaded.pixels, truth)


# ---- finding 6: ICC on palette, LA, 16-bit grey ----------------------------------------------------------------


def _profile(space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal ICC v2 display profile (``space``: b"RGB " or b"GRAY") with the given tags."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))
    text = b"linear test profile\0"
    tags = [(b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 79),
            (b"wtpt", b"XYZ \0\0\0\0" + s15(.9642) + s15(1) + s15(.8249)), *tags]
    offset, table, body = 132 + 12 * len(tags), b"", b""
    for sig, blob in tags:
        blob += b"\0" * (-len(blob) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(blob))
        body += blob
    head = (struct.pack(">I", offset + len(body)) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntr" + space + b"XYZ "
            + b"\0" * 12 + b"acsp" + b"\0" * 28 + s15(.9642) + s15(1) + s15(.8249))
    return head + b"\0" * (128 - len(head)) + struct.pack(">I", len(tags)) + table + body


def _curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _rgb_profile(gamma: float) -> bytes:
    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))
    return _profile(b"RGB ", [(b"rXYZ", xyz(.4361, .2225, .0139)), (b"gXYZ", xyz(.3851, .7169, .0971)),
                              (b"bXYZ", xyz(.1431, .0606, .7141)), (b"rTRC", _curve(gamma)),
                              (b"gTRC", _curve(gamma)), (b"bTRC", _curve(gamma))])


def _grey_profile(gamma: float) -> bytes:
    return _profile(b"GRAY", [(b"kTRC", _curve(gamma))])


def _to_srgb(img: Image.Image, icc: bytes, mode: str = "RGB") -> np.ndarray:
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    out = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode=mode)
    assert out is not None
    return np.asarray(out, np.float64) / 255.0


def _png(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _gradient() -> np.ndarray:
    base = np.zeros((24, 40, 3), np.uint8)
    base[..., 0] = np.linspace(0, 255, 40)[None]
    base[..., 1] = 128
    base[:6, :6] = (255, 0, 0)
    return base


def test_icc_profile_applied_to_palette_image() -> None:
    icc = _rgb_profile(1.0)
    pal = Image.fromarray(_gradient()).quantize(64)
    loaded = decode_image_bytes(_png(pal, icc_profile=icc), "pal.png")
    assert np.abs(loaded.pixels - _to_srgb(pal.convert("RGB"), icc)).max() < 1e-6
    assert any("converted to sRGB" in n for n in loaded.notes), loaded.notes
    # a transparent palette entry: expanded to RGBA, converted, then flattened onto white
    data = _png(pal, icc_profile=icc, transparency=int(np.asarray(pal)[0, 0]))
    rgba = _to_srgb(Image.open(io.BytesIO(data)).convert("RGBA"), icc, "RGBA")
    want = rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]
    assert np.abs(decode_image_bytes(data, "palt.png").pixels - want).max() < 1e-6


def test_icc_profile_applied_to_grey_alpha_and_16bit_grey() -> None:
    icc = _grey_profile(1.0)
    grey = _gradient()[..., 0]
    alpha = np.full(grey.shape, 255, np.uint8)
    alpha[:, 20:] = 100
    la = Image.fromarray(np.dstack([grey, alpha]), "LA")
    loaded = decode_image_bytes(_png(la, icc_profile=icc), "la.png")
    rgb, a = _to_srgb(Image.fromarray(grey), icc), alpha[..., None] / 255.0
    assert np.abs(loaded.pixels - (rgb * a + 1 - a)).max() < 1e-6
    g16 = (np.linspace(0, 65535, 24 * 40).reshape(24, 40)).astype(np.uint16)
    loaded16 = decode_image_bytes(_png(Image.fromarray(g16), icc_profile=icc), "g16.png")
    assert np.abs(loaded16.pixels - _to_srgb(Image.fromarray(g16), icc)).max() < 1e-6
    assert any("converted to sRGB (16-bit grey read at 8 bits" in n for n in loaded16.notes), loaded16.notes


# ---- finding 7: tRNS colour key --------------------------------------------------------------------------------


def test_colour_key_is_transparency_on_rgb_and_grey_pngs() -> None:
    arr = np.full((32, 32, 3), 200, np.uint8)
    arr[:16] = 0  # the key colour
    arr[20:, :4] = (0, 0, 1)  # near the key: stays
    want = np.where((arr == 0).all(axis=2)[..., None], 1.0, arr / 255.0)
    rgb = decode_image_bytes(_png(Image.fromarray(arr), transparency=(0, 0, 0)), "key.png")
    assert np.array_equal(rgb.pixels, want.astype(np.float32)) and any("colour key" in n for n in rgb.notes)
    grey = decode_image_bytes(_png(Image.fromarray(arr[..., 2]), transparency=0), "keyl.png")
    g = arr[..., 2:3] / 255.0
    assert np.array_equal(grey.pixels, np.repeat(np.where(g == 0, 1.0, g), 3, axis=2).astype(np.float32))


def _png16_rgb(arr: np.ndarray, key: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    h, w = arr.shape[:2]
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"tRNS", struct.pack(">HHH", *key)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_colour_key_on_16bit_pngs() -> None:
    arr = _u16(20, 20, 3)
    arr[:5] = (1000, 2000, 3000)
    arr[5:7] = (1000, 2000, 3001)  # one 16-bit step away: opaque
    loaded = decode_image_bytes(_png16_rgb(arr, (1000, 2000, 3000)), "key16.png")
    keyed = (arr == (1000, 2000, 3000)).all(axis=2)[..., None]
    assert np.abs(loaded.pixels - np.where(keyed, 1.0, arr / 65535.0)).max() < 1e-7
    g16 = arr[..., 0].copy()
    grey = decode_image_bytes(_png(Image.fromarray(g16), transparency=1000), "keyg16.png")
    want = np.where(g16 == 1000, 1.0, g16 / 65535.0)[..., None]
    assert np.abs(grey.pixels - want).max() < 1e-7 and any("colour key" in n for n in grey.notes)


# ---- findings 8 and 9: refset build suffixes, documentation, TIFF orientation note -------------------------------


def test_refset_build_takes_every_decodable_suffix_and_names_the_rest(tmp_path: Path) -> None:
    arr = (RNG.random((32, 32, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(arr)
    img.save(tmp_path / "a.png")
    img.save(tmp_path / "c.jfif", format="JPEG")
    img.save(tmp_path / "d.jpe", format="JPEG")
    expected = {"a.png", "c.jfif", "d.jpe"}
    if features.check("avif"):
        img.save(tmp_path / "b.avif", quality=90)
        expected.add("b.avif")
    (tmp_path / "e.heic").write_bytes(b"\0\0\0\x18ftypheic")  # Pillow here has no HEIF plugin
    (tmp_path / "notes.txt").write_text("not an image")
    result = build_reference_set(tmp_path)
    assert {row["file"] for row in result.items} == expected
    skipped = [w for w in result.warnings if "not read" in w]
    assert len(skipped) == 1 and "e.heic" in skipped[0] and "notes.txt" in skipped[0], result.warnings
    assert "manifest.csv" not in skipped[0]
    again = build_reference_set(tmp_path)  # the manifest written in place is not named
    assert "manifest.csv" not in " ".join(again.warnings)


def test_docs_state_the_loading_conventions() -> None:
    doc = (ROOT / "docs" / "images.md").read_text(encoding="utf-8").lower()
    for topic in ("white", "exif", "orientation", "icc", "16-bit", "first frame", "float", "tRNS".lower()):
        assert topic in doc, topic
    for suffix in IMAGE_SUFFIXES:
        assert f"`{suffix}`" in doc, suffix
    assert "docs/images.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_tiff_orientation_note_on_pillow_path() -> None:
    arr = (RNG.random((18, 26, 3)) * 255).astype(np.uint8)
    loaded = decode_image_bytes(_tiff(arr, photometric="rgb", extratags=[(274, 3, 1, 6, True)]), "turned.tif")
    assert np.array_equal(loaded.pixels, np.rot90(arr, -1) / np.float32(255))
    assert "TIFF orientation 6 applied (rotated 90 clockwise)" in loaded.notes
