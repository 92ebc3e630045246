"""The strongest invented regions: window scores against a brute-force loop, suppression, order, the empty map,
bad input, and a planted region found by the real analysis in a 2048 x 1280 photo-sized image."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qa.metrics.invented.regions import REGION_SIDE, Region, strongest_regions, window_means


def _brute_means(values: np.ndarray, side: int) -> np.ndarray:
    h, w = values.shape
    return np.array([[values[y:y + side, x:x + side].astype(np.float64).mean() for x in range(w - side + 1)]
                     for y in range(h - side + 1)])


def _brute_regions(values: np.ndarray, k: int, side: int, sep: int) -> list[tuple[int, int]]:
    """Greedy top-k by an explicit list of every window (the definition, written the slow way)."""
    scores = _brute_means(values, side)
    windows = [(scores[y, x], y, x) for y, x in itertools.product(range(scores.shape[0]), range(scores.shape[1]))
               if np.any(values[y:y + side, x:x + side] != 0)]
    chosen: list[tuple[int, int]] = []
    while windows and len(chosen) < k:
        best = max(windows, key=lambda t: (t[0], -t[1], -t[2]))  # ties: first in row-major order
        chosen.append((best[2], best[1]))
        windows = [t for t in windows if not (abs(t[1] - best[1]) < sep and abs(t[2] - best[2]) < sep)]
    return chosen


@pytest.mark.parametrize("side", [1, 3, 8])
def test_window_means_match_a_loop(side: int) -> None:
    rng = np.random.default_rng(side)
    values = rng.random((23, 31)).astype(np.float32)
    assert np.allclose(window_means(values, side), _brute_means(values, side), atol=1e-12)


@pytest.mark.parametrize(("k", "side", "sep"), [(4, 5, 5), (6, 4, 9), (3, 7, 2)])
def test_regions_match_the_greedy_definition(k: int, side: int, sep: int) -> None:
    rng = np.random.default_rng(k * 100 + side)
    values = rng.random((30, 26)) ** 4  # a few strong pixels, many weak ones
    values[rng.random(values.shape) < 0.5] = 0.0
    got = strongest_regions(values, k=k, side=side, separation=sep)
    assert [(r.x, r.y) for r in got] == _brute_regions(values, k, side, sep)
    scores = [r.score for r in got]
    assert scores == sorted(scores, reverse=True)
    assert all(r.side == side for r in got)
    assert np.allclose(scores, [values[r.y:r.y + side, r.x:r.x + side].mean() for r in got])


def test_default_separation_gives_disjoint_windows_strongest_first() -> None:
    values = np.zeros((300, 400), np.float32)
    values[200:240, 300:340] = 0.5  # strongest
    values[20:60, 20:60] = 0.2
    values[100:110, 150:160] = 0.9  # brightest pixels, but a small area: a lower window mean than the first
    got = strongest_regions(values, k=5, side=64)
    assert len(got) == 3  # three separate non-zero places; the rest of the map is empty
    boxes = [(r.x, r.y) for r in got]
    for (ax, ay), (bx, by) in itertools.combinations(boxes, 2):
        assert abs(ax - bx) >= 64 or abs(ay - by) >= 64  # no two windows overlap
    assert got[0].score == pytest.approx(0.5 * 40 * 40 / 64**2)
    assert 276 <= got[0].x <= 300 and 176 <= got[0].y <= 200  # the window contains the strongest region
    assert got[1].score == pytest.approx(0.2 * 40 * 40 / 64**2)
    assert got[2].score == pytest.approx(0.9 * 100 / 64**2)


def test_empty_and_tiny_maps() -> None:
    assert strongest_regions(np.zeros((50, 80))) == []
    assert strongest_regions(np.zeros((0, 5))) == []
    one = np.zeros((10, 12))
    one[3, 4] = 2.0
    # the window is clipped to the map's shorter side
    assert strongest_regions(one, k=2, side=64) == [Region(0, 0, 10, 2.0 / 100)]
    assert strongest_regions(one, k=1, side=1) == [Region(4, 3, 1, 2.0)]


def test_the_located_region_comes_first_and_suppresses_its_neighbours() -> None:
    """``first``: the region score located the strongest region (its centre); its window comes first even where
    the map's mean is lower than elsewhere, clipped to the map, and no later window overlaps it."""
    values = np.zeros((300, 400), np.float32)
    values[200:240, 300:340] = 0.5  # the map's strongest window
    values[20:60, 20:60] = 0.2
    got = strongest_regions(values, k=3, side=64, first=(40, 40))
    assert (got[0].x, got[0].y) == (8, 8) and got[0].score == pytest.approx(0.2 * 40 * 40 / 64**2)
    assert 276 <= got[1].x <= 300 and 176 <= got[1].y <= 200
    assert len(got) == 2  # nothing else touches a non-zero pixel
    # a centre near the border: the window is clipped to the map; an empty map still shows the located region
    assert strongest_regions(values, k=1, side=64, first=(299, 2)) == [Region(0, 236, 64, 0.0)]
    assert strongest_regions(np.zeros((50, 80)), k=3, side=16, first=(10, 76)) == [Region(64, 2, 16, 0.0)]
    # with the located region elsewhere, the same windows follow it as without one
    alone = strongest_regions(values, k=2, side=64)
    assert strongest_regions(values, k=3, side=64, first=(150, 180))[1:] == alone


@pytest.mark.parametrize(("bad", "match"), [
    (np.zeros((4, 4, 3)), "must be"),
    (np.array([[np.nan, 1.0]]), "NaN or Inf"),
    (np.array([["a"]]), "real numbers"),
])
def test_bad_maps_are_refused(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        strongest_regions(bad)


def test_bad_parameters_are_refused() -> None:
    values = np.ones((8, 8))
    with pytest.raises(ValueError, match="at least one"):
        strongest_regions(values, k=0)
    with pytest.raises(ValueError, match="separation"):
        strongest_regions(values, separation=0)
    with pytest.raises(ValueError, match="window side"):
        window_means(values, 9)


def test_the_analysis_map_points_at_a_planted_grating_in_a_release_size_image() -> None:
    """A 3-px grating of +-0.08 in one 64 x 64 area of a 2048 x 1280 smooth image: the invented-detail map's
    strongest region is that area, and its score stands far above the next region's."""
    from qa.metrics.invented.metrics import invented_result

    h, w = 1280, 2048
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ref = np.stack([0.5 + 0.2 * np.sin(xx / 150.0) * np.cos(yy / 110.0)] * 3, axis=-1).astype(np.float32)
    out = ref.copy()
    y0, x0 = 900, 1500
    out[y0:y0 + 64, x0:x0 + 64] += (0.08 * np.sign(np.sin(2 * np.pi * xx[:64, :64] / 3.0)))[..., None]
    res = invented_result(np.clip(out, 0, 1), ref)
    found = strongest_regions(res.map, k=3, side=REGION_SIDE)
    assert found, "the map marks the grating"
    top = found[0]
    assert abs(top.x - x0) <= 16 and abs(top.y - y0) <= 16, top
    assert len(found) == 1 or found[1].score < 0.2 * top.score, found


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,side,density", [((130, 97), 64, 0.002), ((40, 33), 7, 0.3), ((16, 16), 16, 0.5),
                                                ((5, 9), 1, 0.5), ((50, 40), 8, 0.0)])
def test_the_compiled_window_sums_are_numpys_integral_image(dtype: type, shape: tuple[int, int], side: int,
                                                             density: float) -> None:
    """The kernel's window sums are numpy's cumsum-based float64 numbers bit for bit (so the regions and their
    scores are unchanged), and its non-zero test the exact count's."""
    from qa.metrics.invented import regions

    rng = np.random.default_rng(side)
    arr = (rng.random(shape) * (rng.random(shape) < density)).astype(dtype)
    sums, nonzero = regions._window_sums(arr, side)
    assert np.array_equal(sums, regions._box_sums(arr, side))
    assert np.array_equal(nonzero, regions._box_sums((arr != 0).astype(np.float64), side) > 0.5)
