"""The invented-detail map is the grey closing of the invented energy bounded by the squared change (oracle and
torch port), checked against a brute-force closing written here, and for what it is for: sparse strokes read as
their region, a solid region keeps its outline, the outline is where the output changed, the scalars never see
it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from qa.metrics.invented import dispatch, model, oracle
from qa.metrics.invented.oracle.region_map import change_bound, fill_holes


def brute_closing(e: np.ndarray, r: int) -> np.ndarray:
    """Grey closing by a (2r+1)^2 square, samples beyond the edges ignored, one pixel at a time."""
    h, w = e.shape

    def window(a: np.ndarray, y: int, x: int) -> np.ndarray:
        return a[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]

    dil = np.array([[window(e, y, x).max() for x in range(w)] for y in range(h)])
    return np.array([[window(dil, y, x).min() for x in range(w)] for y in range(h)])


def brute_fill(f: np.ndarray) -> np.ndarray:
    """Grey hole filling by its definition: from the border's values (the maximum inside), ``s = max(f,
    min of s over the 3 x 3 square)`` one pixel at a time until nothing changes."""
    h, w = f.shape
    s = np.full_like(f, f.max())
    s[0], s[-1], s[:, 0], s[:, -1] = f[0], f[-1], f[:, 0], f[:, -1]
    while True:
        new = np.array([[max(f[y, x], s[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].min()) for x in range(w)]
                        for y in range(h)])
        if (new == s).all():
            return s
        s = new


@pytest.mark.parametrize("kernels", [True, False])
@pytest.mark.parametrize("shape", [(23, 31), (4, 9), (1, 1), (12, 3)])
def test_oracle_and_both_tiers_match_brute_force_closing(monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int],
                                                         kernels: bool) -> None:
    monkeypatch.setattr(dispatch, "USE_KERNELS", kernels)
    rng = np.random.default_rng(sum(shape))
    e = (rng.random(shape) > 0.85) * rng.random(shape) * 1e-3
    want = np.sqrt(brute_fill(brute_closing(e, model.MAP_CLOSING)))
    np.testing.assert_allclose(oracle.region_map(e), want, rtol=1e-6, atol=1e-9)
    batch = torch.from_numpy(np.stack([e, 2 * e])).float()  # a batch of two
    got = dispatch.region_map(batch)
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got[1].numpy(), np.sqrt(2) * want, rtol=1e-5, atol=1e-8)
    # on float32 energy (what the analysis makes) the compiled map is the oracle's bit for bit (max and min are
    # exact, and a correctly rounded float32 square root is the float64 one rounded to float32): the invented
    # split's maps, drawn by the oracle before issue 28, kept their values; torch's own CPU square root may be
    # one float32 ulp off
    for i in range(2):
        if kernels:
            np.testing.assert_array_equal(got[i].numpy(), oracle.region_map(batch[i].numpy()))
        else:
            np.testing.assert_allclose(got[i].numpy(), oracle.region_map(batch[i].numpy()), rtol=2.5e-7, atol=0)


def test_strokes_read_as_their_region_and_a_solid_region_keeps_its_outline() -> None:
    region = np.zeros((96, 96), bool)
    region[24:72, 24:72] = True
    strokes = np.zeros_like(region)
    strokes[24:72:6, 24:72] = True  # 1-px strokes every 6 px: five gaps in six pixels
    e = strokes * 4e-4
    iou = lambda m: (m & region).sum() / (m | region).sum()  # noqa: E731
    assert iou(np.sqrt(e) > 0.01) < 0.2
    closed = oracle.region_map(e) > 0.01
    assert iou(closed) > 0.85  # only the rows after the last stroke stay out
    solid = oracle.region_map(region * 4e-4) > 0.01
    assert (solid == region).all()
    # never lower than the energy's own amplitude, never above its maximum
    assert (oracle.region_map(e) >= np.sqrt(e).astype(np.float32)).all()
    assert oracle.region_map(e).max() == np.float32(np.sqrt(4e-4))


def test_scalars_do_not_see_the_closing(photo: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    out = photo.copy()
    out[40:80:5, 30:90] = np.clip(out[40:80:5, 30:90] + 0.1 * rng.standard_normal((8, 60, 3)), 0, 1)
    res = oracle.invented_detail(out, photo)
    assert res.invented > 0
    denom = max(res.out_energy, res.ref_energy)
    assert res.invented == pytest.approx(float(res.invented_energy.sum()) / denom, rel=1e-9)
    assert res.change is not None
    np.testing.assert_array_equal(res.change, (oracle.luma(out) - oracle.luma(photo)).astype(np.float32))
    np.testing.assert_array_equal(res.map, oracle.region_map(res.invented_energy, res.change))
    assert (res.map ** 2).sum() > res.invented_energy.sum()  # the gaps between the strokes are filled


@pytest.mark.parametrize("kernels", [True, False])
def test_the_change_bounds_the_energy_in_the_oracle_and_both_tiers(monkeypatch: pytest.MonkeyPatch,
                                                                  kernels: bool) -> None:
    monkeypatch.setattr(dispatch, "USE_KERNELS", kernels)
    rng = np.random.default_rng(5)
    e = ((rng.random((2, 19, 27)) > 0.7) * rng.random((2, 19, 27)) * 4e-3).astype(np.float32)
    c = (0.08 * rng.standard_normal((2, 19, 27))).astype(np.float32)
    want = np.minimum(e.astype(np.float64), c.astype(np.float64) ** 2)
    np.testing.assert_allclose(change_bound(e[0], c[0]), want[0], rtol=1e-12)
    got = dispatch.change_bound(torch.from_numpy(e), torch.from_numpy(c))
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-7, atol=0)
    maps = dispatch.region_map(torch.from_numpy(e), torch.from_numpy(c)).numpy()
    for i in range(2):
        np.testing.assert_allclose(maps[i], np.sqrt(brute_fill(brute_closing(want[i], model.MAP_CLOSING))),
                                   rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(maps[i], oracle.region_map(e[i], c[i]), rtol=1e-6, atol=1e-9)


def test_the_outline_is_where_the_output_changed(photo: np.ndarray) -> None:
    """Faint text-like strokes on a photo: without the bound, the band windows spread the map past the strokes'
    box, more for stronger strokes (at a fixed threshold); with it, the map stays where the output changed at
    every threshold, and the closing still fills the gaps between the strokes."""
    box = np.zeros(photo.shape[:2], bool)
    box[40:50, 20:76] = True
    ink = np.zeros_like(box)
    ink[40:50, 20:76:4] = True  # vertical strokes every 4 px
    ink[40, 20:76] = ink[49, 20:76] = True
    out = np.clip(photo + (40 / 255) * ink[..., None], 0, 1).astype(np.float32)
    res = oracle.invented_detail(out, photo)
    far = ~ndimage.binary_dilation(box, iterations=1)  # more than 1 px outside the box
    for level in (0.00225, 0.0045, 0.009):
        unbounded = oracle.region_map(res.invented_energy) > level
        bounded = res.map > level
        assert (unbounded & far).sum() > 0.2 * box.sum()  # the halo (184 px at 0.0045)
        assert (bounded & far).sum() == 0
        assert (bounded & box).sum() == box.sum()  # the gaps between the strokes are filled
    # the map never exceeds the change's amplitude before the closing: at a pixel it equals at most the
    # largest |change| of a square around it
    lim = ndimage.maximum_filter(np.abs(res.change), size=2 * model.MAP_CLOSING + 1, mode="nearest")
    assert (res.map <= lim + 1e-7).all()


@pytest.mark.parametrize("kernels", [True, False])
@pytest.mark.parametrize("shape", [(40, 53), (3, 7), (1, 5), (17, 2)])
def test_hole_filling_in_the_oracle_and_both_tiers(monkeypatch: pytest.MonkeyPatch, kernels: bool,
                                                  shape: tuple[int, int]) -> None:
    monkeypatch.setattr(dispatch, "USE_KERNELS", kernels)
    rng = np.random.default_rng(shape[0])
    f = (rng.random(shape) * (rng.random(shape) > 0.4)).astype(np.float32)  # many small enclosed pits
    want = brute_fill(f.astype(np.float64))
    np.testing.assert_array_equal(fill_holes(f), want)
    got = dispatch.fill_holes(torch.from_numpy(np.stack([f, f[::-1].copy()])))
    np.testing.assert_array_equal(got[0].numpy(), want)
    np.testing.assert_array_equal(got[1].numpy(), brute_fill(f[::-1].astype(np.float64)))


def test_what_invented_detail_encloses_is_its_region() -> None:
    """An outline of invented energy (an inserted object's edge: its inside explained) reads as the whole
    object at every level below the outline's; an outline with a gap to the outside does not, and nothing
    outside the outline moves."""
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 30)
    ring = (r >= 12) & (r < 15)
    e = ring * 4e-4 + (r < 12) * 1e-6
    m = oracle.region_map(e)
    assert (m[r < 15] >= np.float32(0.02)).all()  # the inside at the outline's level (RMS 0.02)
    assert (m[r >= 15 + 2 * model.MAP_CLOSING] == 0).all()
    broken = e * ~((np.abs(yy - 32) < 8) & (xx > 30))  # a 15-px gap in the outline on the right
    mb = oracle.region_map(broken)
    assert np.median(mb[r < 6]) < 0.005  # the inside is open to the outside: not filled


@pytest.mark.parametrize("kernels", [True, False])
def test_hole_filling_ends_on_a_map_with_nan(monkeypatch: pytest.MonkeyPatch, kernels: bool) -> None:
    """The analysis rejects NaN images before any map exists; a NaN map must still not hang the fill."""
    monkeypatch.setattr(dispatch, "USE_KERNELS", kernels)
    f = torch.rand(1, 20, 20)
    f[0, 5, 5] = float("nan")
    assert dispatch.fill_holes(f).shape == f.shape
