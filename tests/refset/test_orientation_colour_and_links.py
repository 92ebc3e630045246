"""Small breaks of issue 18: EXIF orientation and ICC profiles are applied (and noted), and `qa score` refuses a
candidate symbolic link that leads out of its folder, as `qa refset build` does."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import skimage.data
from PIL import Image, ImageCms

from qa.imageio import decode_image_bytes, load_image, save_png
from qa.score import score_folders


def _photo() -> np.ndarray:
    """An asymmetric 48x64 uint8 RGB crop (rotations and flips all differ)."""
    return np.ascontiguousarray(skimage.data.astronaut()[100:148, 150:214])


def _png(arr: np.ndarray, **params: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **params)
    return buf.getvalue()


def _linear_rgb_profile() -> bytes:
    """A minimal ICC v2 matrix/TRC display profile: sRGB primaries (D50-adapted) with gamma 1.0, i.e. linear
    light. Written here byte by byte so the expected conversion is the sRGB transfer function alone."""

    def s15(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    text = b"linear sRGB primaries\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0\0\0" + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0"  # gamma 1.0 (u8Fixed8)
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
            (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)), (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249)
              + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def _srgb_encode(v: np.ndarray) -> np.ndarray:
    """Linear light [0, 1] to sRGB-encoded values (IEC 61966-2-1)."""
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def test_exif_orientation_is_applied_and_noted() -> None:
    arr = _photo()
    for tag, upright in ((6, np.rot90(arr, k=-1)), (8, np.rot90(arr, k=1)), (3, arr[::-1, ::-1]), (2, arr[:, ::-1])):
        exif = Image.Exif()
        exif[0x0112] = tag
        loaded = decode_image_bytes(_png(arr, exif=exif.tobytes()), name=f"o{tag}.png")
        np.testing.assert_array_equal(np.rint(loaded.pixels * 255).astype(np.uint8), upright)
        assert any(f"EXIF orientation {tag} applied" in n for n in loaded.notes), loaded.notes
    plain = decode_image_bytes(_png(arr))
    assert plain.notes == () and plain.pixels.shape == (48, 64, 3)


def test_icc_profile_is_converted_to_srgb_or_noted() -> None:
    arr = _photo()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    same = decode_image_bytes(_png(arr, icc_profile=srgb))
    np.testing.assert_array_equal(np.rint(same.pixels * 255).astype(np.uint8), arr)  # sRGB: nothing to do
    assert same.notes == ()
    linear = decode_image_bytes(_png(arr, icc_profile=_linear_rgb_profile()))
    assert linear.notes == ("ICC profile 'linear sRGB primaries' converted to sRGB",)
    expected = _srgb_encode(arr / 255.0)
    assert np.abs(linear.pixels - expected).max() < 3 / 255  # lcms' 8-bit transform vs the formula
    assert np.abs(linear.pixels - arr / 255.0).max() > 0.1  # and far from reading the bytes as sRGB
    gray = decode_image_bytes(_png(arr[..., 0], icc_profile=_linear_rgb_profile()))  # RGB profile, gray image
    assert any("ICC profile" in n for n in gray.notes), gray.notes
    assert any("unreadable ICC profile" in n for n in decode_image_bytes(_png(arr, icc_profile=b"junk")).notes)


def test_score_refuses_a_candidate_symlink_out_of_its_folder(tmp_path: Path) -> None:
    arr = _photo() / 255.0
    ref, cand, outside = tmp_path / "ref", tmp_path / "cand", tmp_path / "secret"
    for name in ("a", "b"):
        save_png(arr, ref / f"{name}.png")
    save_png(arr, cand / "a.png")
    save_png(arr, outside / "b.png")
    (cand / "b.png").symlink_to(outside / "b.png")
    (cand / "inner.png").symlink_to(cand / "a.png")  # a link inside the folder is fine
    summary = score_folders(ref, [cand], tmp_path / "out.csv", metrics=["psnr"])
    df = pd.read_csv(tmp_path / "out.csv")
    b = df[df.image == "b"].iloc[0]
    assert b.status == "error" and "outside" in b.detail and "refused" in b.detail
    assert df[df.image == "a.png"].iloc[0].status == "ok" and summary.error == 1
    assert load_image(cand / "inner.png").pixels.shape == (48, 64, 3)
