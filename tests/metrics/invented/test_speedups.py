"""The pieces that make the torch analysis cheap at release resolution, each against an independent reference:
torch's own bicubic interpolation, numpy's percentile, scipy's Gaussian, the oracle's seed std and hashes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from qa.metrics import torch_memory
from qa.metrics.invented import analysis, cache, dispatch, local_fit, oracle
from qa.metrics.invented.oracle import codec as oracle_codec
from qa.metrics.invented.tensor import codec as tensor_codec
from qa.metrics.invented.tensor import filters as tensor_filters
from qa.metrics.invented.tensor import pointwise as tensor_pointwise


@pytest.mark.parametrize("shape,factors", [((13, 17), (4, 4)), ((8, 5), (2, 4)), ((6, 9), (1, 2))])
def test_separable_bicubic_is_torchs_bicubic(shape: tuple[int, int], factors: tuple[int, int]) -> None:
    x = torch.from_numpy(np.random.default_rng(0).random((3, *shape))).float()
    want = torch.nn.functional.interpolate(x[:, None], scale_factor=factors, mode="bicubic", align_corners=False)[:, 0]
    got = dispatch.bicubic(x, *factors)
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 1e-6


def test_percentile_with_ties_is_numpys() -> None:
    """The second order statistic comes from a shortcut (smallest value above the first): ties must not fool it."""
    rng = np.random.default_rng(1)
    for trial in range(100):
        n = int(rng.integers(2, 40))
        x = rng.integers(0, 4, size=(3, n)) if trial % 2 else rng.random((3, n))
        for q in (0.0, 10.0, 25.0, 50.0, 99.0, 100.0):
            got = tensor_pointwise.percentile(torch.from_numpy(x.astype(np.float32)), q).numpy()
            assert np.allclose(got, np.percentile(x, q, axis=1), atol=1e-6), (x, q)


def test_window_products_from_a_list_match_scipy() -> None:
    """Features given as separate tensors (no stacked copy), products formed in row chunks shorter than the
    image: the decimated window means are scipy's full-resolution filter at the coarse pixels."""
    rng = np.random.default_rng(2)
    f = rng.standard_normal((3, 1, 75, 40))
    pairs = [(0, 0), (1, 2), (2, 0)]
    old = tensor_filters.PRODUCT_ROWS
    try:
        tensor_filters.PRODUCT_ROWS = 16  # several chunks, the last one short
        got = dispatch.window_products([torch.from_numpy(a).float() for a in f], pairs, 4.0, 2, local_fit.EXTRA).double().numpy()
    finally:
        tensor_filters.PRODUCT_ROWS = old
    e = local_fit.EXTRA
    for p, (i, j) in enumerate(pairs):
        want = ndimage.gaussian_filter(f[i, 0] * f[j, 0], 4.0, mode="reflect", truncate=4.0)[::2, ::2]
        assert np.abs(got[p, 0, e : e + 38, e : e + 20] - want).max() < 1e-5 * np.abs(want).max()


def test_large_planes_filter_like_small_ones() -> None:
    """blur_h's per-plane path (planes of LARGE_PLANE pixels or more) gives the batched path's numbers."""
    x = torch.from_numpy(np.random.default_rng(3).random((2, 40, 30))).float()
    old = tensor_filters.LARGE_PLANE
    try:
        tensor_filters.LARGE_PLANE = 1
        per_plane = dispatch.blur_h(x, 1.6, 2, 3)
    finally:
        tensor_filters.LARGE_PLANE = old
    assert torch.allclose(per_plane, dispatch.blur_h(x, 1.6, 2, 3), atol=1e-7)


def test_seed_std_from_a_list_is_the_oracles(photo: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    outs = [np.clip(photo + 0.02 * rng.standard_normal(photo.shape), 0, 1).astype(np.float32) for _ in range(3)]
    got = analysis.seed_std([cache.to_batch([o], torch.device("cpu")) for o in outs]).numpy()
    assert np.abs(got - oracle.seed_std_map(outs)).max() < 1e-6
    same = analysis.seed_std([cache.to_batch([photo], torch.device("cpu"))] * 2)
    assert float(same.abs().max()) == 0.0


def test_to_batch_shares_a_writable_image_and_copies_a_read_only_one(photo: np.ndarray) -> None:
    shared = cache.to_batch([photo], torch.device("cpu"))
    assert shared.data_ptr() == photo.ctypes.data  # no copy of a 2048 px image per metric call
    ro = photo.copy()
    ro.flags.writeable = False
    with_copy = cache.to_batch([ro], torch.device("cpu"))
    assert with_copy.data_ptr() != ro.ctypes.data and torch.equal(with_copy, shared)
    # the channels-last luma (one matrix-vector product) is the oracle's Rec. 601 luma
    assert torch.allclose(tensor_pointwise.luma(shared)[0], torch.from_numpy(oracle.luma(photo)).float(), atol=1e-6)


def test_digest_tells_pixels_shapes_and_dtypes_apart(photo: np.ndarray) -> None:
    other = photo.copy()
    other[5, 7, 1] += 1e-6
    digests = {cache._digest(photo), cache._digest(other), cache._digest(photo.astype(np.float64)),
               cache._digest(photo.reshape(photo.shape[0] * 2, -1, 3))}
    assert len(digests) == 4
    assert cache._digest(photo) == cache._digest(photo.copy()) == cache._digest(np.asfortranarray(photo))


def test_keep_freed_memory_is_idempotent() -> None:
    first = torch_memory.keep_freed_memory()
    assert isinstance(first, bool) and torch_memory.keep_freed_memory() is first


def test_codec_cap_is_the_oracles(photo: np.ndarray) -> None:
    """Block DCT excess and the per-block cap of method v3 against the oracle's codec module (scipy's DCT),
    on a size with partial blocks at the right and bottom edges (left uncapped)."""

    rng = np.random.default_rng(5)
    ref = oracle.luma(photo)[:93, :90]
    yy, xx = np.indices(ref.shape)
    out = ref + 0.02 * ((yy + xx) % 2 - 0.5) * (yy > 40) + 0.005 * rng.standard_normal(ref.shape)
    want = oracle_codec.codec_excess(out, ref)
    got = tensor_codec.codec_excess(torch.from_numpy(out).float()[None], torch.from_numpy(ref).float()[None])[0].double().numpy()
    assert got.shape == want.shape == (11, 11)
    assert np.abs(got - want).max() < 1e-6 * want.max() + 1e-9 and want.max() > 1e-5
    inv = rng.random(ref.shape) * 1e-4
    capped = oracle_codec.codec_cap(inv, want)
    scale = tensor_codec.block_scale(torch.from_numpy(inv).float()[None], torch.from_numpy(want).float()[None])[0].numpy()
    assert np.allclose(inv * scale, capped, rtol=1e-5, atol=1e-12)
    assert (scale[88:] == 1).all() and (scale[:, 88:] == 1).all() and (scale < 1).any()
