"""Full-reference fidelity functions on numpy images: PSNR, SSIM (two named variants), MS-SSIM.

Inputs are float arrays of shape (H, W, 3) (or (H, W) where stated) with values in [0, 1] unless a
``data_range`` says otherwise. Computation is in float64 with separable filters (scipy.ndimage), so results do
not depend on the BLAS or the number of threads (large planes are filtered in parallel threads, each the same way).

Variants, named apart because they give different numbers:

- :func:`ssim` -- Wang et al. (2004) as in their MATLAB ``ssim_index.m`` and most papers: the image is first
  rounded to uint8, converted to luma with MATLAB ``rgb2gray`` (rounded to uint8), filtered with an 11x11
  Gaussian window (sigma 1.5, "valid" region only), population (biased) covariances, K1=0.01, K2=0.03,
  L=255. Optionally the 2009 ``ssim.m`` automatic downsampling by ``round(min(H, W) / 256)``.
- :func:`ssim_skimage` -- scikit-image's default ``structural_similarity``: 7x7 uniform window, sample
  covariance (ddof 1), computed per RGB channel and averaged, borders of 3 pixels excluded.
- :func:`ms_ssim` -- Wang et al. (2003) multi-scale SSIM on RGB, 5 scales, weights
  (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), Gaussian 11x11 sigma 1.5 valid window, 2x2 average pooling;
  negative contrast-structure terms are clipped at 0 (as pytorch_msssim / torchmetrics ``normalize="relu"``).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

from qa.metrics.base import MetricInputError

#: MATLAB rgb2gray weights (the inverse of the NTSC YIQ transform's first row, as MATLAB computes them)
RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: MS-SSIM's Gaussian window: side (pixels) and sigma (pixels)
MS_SSIM_WINDOW, MS_SSIM_SIGMA = 11, 1.5
#: the smallest image side MS-SSIM takes (pixels): the window must fit the coarsest scale, floor(side / 16) after
#: the four 2x2 poolings (the common "> 160 px" rule is for implementations that skip the filter along an axis
#: shorter than the window; this one does not, so sides of 161-175 px gave NaN)
MS_SSIM_MIN_SIDE = MS_SSIM_WINDOW * 2 ** (len(MS_SSIM_WEIGHTS) - 1)
_K1, _K2 = 0.01, 0.03


def check_pair(output: np.ndarray, reference: np.ndarray, name: str = "image") -> None:
    """Raise :class:`MetricInputError` unless both are same-shape (H, W, 3) arrays with finite values."""
    for label, arr in (("output", output), ("reference", reference)):
        if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.shape[2] != 3:
            shape = getattr(arr, "shape", type(arr).__name__)
            raise MetricInputError(f"{name}: {label} must be an (H, W, 3) array, got {shape}")
        if not np.isfinite(arr.sum()) and not np.isfinite(arr).all():  # a NaN/Inf makes the sum non-finite
            raise MetricInputError(f"{name}: {label} contains NaN or Inf values", "check the decoder's output")
    if output.shape != reference.shape:
        raise MetricInputError(
            f"{name}: output {output.shape} and reference {reference.shape} differ in size",
            "compare images of the same size (resize the reference explicitly and say so)",
        )


#: values of a difference image cast to float64 at a time by :func:`psnr`
PSNR_BLOCK = 1 << 20


def psnr(output: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels: 10 log10(range^2 / MSE).

    Returns ``float('inf')`` for identical images (MSE 0).
    """
    if not (isinstance(output, np.ndarray) and isinstance(reference, np.ndarray)) or output.shape != reference.shape \
            or output.ndim != 3 or output.shape[2] != 3:
        check_pair(output, reference, "psnr")  # raises the precise error
    d = np.subtract(output, reference).ravel()  # exact enough in float32 for values in [0, 1]
    # squares summed in float64, a block of 2^20 values at a time (a float32 sum of 4096 squares was 1e-5 off:
    # 5e-5 dB, metric audit 2026-12-07), by numpy's pairwise sum: the same bits whatever BLAS's thread count (a
    # BLAS dot splits a long vector over its threads, and a Ray worker runs with one)
    sq = 0.0
    for start in range(0, d.size, PSNR_BLOCK):
        block = d[start:start + PSNR_BLOCK].astype(np.float64)
        np.multiply(block, block, out=block)
        sq += float(block.sum())
    if not np.isfinite(sq):  # a NaN/Inf pixel makes the sum non-finite: name it precisely
        check_pair(output, reference, "psnr")
    mse = sq / d.size
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(data_range**2 / mse)


def gaussian_kernel1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian of ``size`` taps (its outer product is MATLAB ``fspecial('gaussian')``)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable correlation of a 2-D float64 image with ``outer(k, k)``, keeping only the valid region."""
    n = len(k)
    # correlate1d with origin -(n//2) places window [i, i+n) at output i; the tail is cropped away
    out = ndimage.correlate1d(img, k, axis=0, mode="constant", origin=-(n // 2))[: img.shape[0] - n + 1]
    out = ndimage.correlate1d(out, k, axis=1, mode="constant", origin=-(n // 2))[:, : img.shape[1] - n + 1]
    return out


#: planes at least this large are filtered in parallel threads (below, thread start-up costs more than it saves)
_PARALLEL_MIN_PIXELS = 256 * 256


def _threads() -> int:
    """Worker threads for the per-plane filters: torch's thread setting (qa's one knob). Each plane is filtered
    the same way whatever the count, so results do not depend on it."""
    import torch

    return max(1, torch.get_num_threads())


def _filter_valid_parallel(planes: tuple[np.ndarray, ...], k: np.ndarray, workers: int) -> list[np.ndarray]:
    """:func:`_filter_valid` of each 2-D plane, as (plane, band of output rows) tasks over ``workers`` threads
    (scipy.ndimage releases the GIL while filtering); every output row is computed exactly as in one call."""
    n = len(k)
    h, w = planes[0].shape
    rows = h - n + 1
    edges = np.linspace(0, rows, 3).astype(int)  # two bands per plane: balances five planes over two threads
    outs = [np.empty((rows, w - n + 1)) for _ in planes]

    def one(task: tuple[int, int, int]) -> None:
        i, r0, r1 = task
        outs[i][r0:r1] = _filter_valid(planes[i][r0 : r1 + n - 1], k)

    tasks = [(i, int(edges[b]), int(edges[b + 1])) for i in range(len(planes)) for b in range(2)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, tasks))
    return outs


def _ssim_terms(x: np.ndarray, y: np.ndarray, k: np.ndarray, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    """SSIM map and contrast-structure map (valid region) of two 2-D float64 images, population covariance."""
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    planes = (x, y, x * x, y * y, x * y)
    workers = _threads()
    if workers > 1 and x.size >= _PARALLEL_MIN_PIXELS:
        mu_x, mu_y, exx, eyy, exy = _filter_valid_parallel(planes, k, workers)
    else:
        mu_x, mu_y, exx, eyy, exy = (_filter_valid(p, k) for p in planes)
    sxx = exx - mu_x * mu_x
    syy = eyy - mu_y * mu_y
    sxy = exy - mu_x * mu_y
    cs = (2.0 * sxy + c2) / (sxx + syy + c2)
    lum = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return lum * cs, cs


def matlab_gray_uint8(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> MATLAB ``rgb2gray(im2uint8(img))`` as float64 (H, W) in 0..255."""
    u8 = np.clip(np.floor(img.astype(np.float64) * 255.0 + 0.5), 0, 255)
    gray = u8[..., 0] * RGB2GRAY[0] + u8[..., 1] * RGB2GRAY[1] + u8[..., 2] * RGB2GRAY[2]
    return np.clip(np.floor(gray + 0.5), 0, 255)


def _matlab_downsample(img: np.ndarray) -> np.ndarray:
    """The 2009 ``ssim.m`` step: f = round(min(H, W) / 256); f x f box filter (symmetric padding), keep every f-th."""
    f = max(1, math.floor(min(img.shape) / 256 + 0.5))
    if f == 1:
        return img
    # MATLAB imfilter(..., 'symmetric', 'same') with an even kernel puts the extra tap before the centre
    out = ndimage.uniform_filter(img, size=f, mode="reflect", origin=-1 if f % 2 == 0 else 0)
    return out[::f, ::f]


def ssim_map(
    output: np.ndarray, reference: np.ndarray, downsample: bool = False, color: str = "gray"
) -> np.ndarray:
    """The per-pixel SSIM map of :func:`ssim`, valid region ((H - 10, W - 10) without downsampling).

    ``color="gray"``: MATLAB rgb2gray luma (the default, what TID2013's official values use);
    ``color="rgb"``: each uint8-rounded RGB channel separately, the maps averaged.
    """
    check_pair(output, reference, "ssim")
    if color == "gray":
        pairs = [(matlab_gray_uint8(output), matlab_gray_uint8(reference))]
    elif color == "rgb":
        xs = np.clip(np.floor(output.astype(np.float64) * 255.0 + 0.5), 0, 255)
        ys = np.clip(np.floor(reference.astype(np.float64) * 255.0 + 0.5), 0, 255)
        pairs = [(xs[..., c], ys[..., c]) for c in range(3)]
    else:
        raise MetricInputError(f"ssim: color must be 'gray' or 'rgb', got {color!r}")
    k = gaussian_kernel1d(11, 1.5)
    maps = []
    for x, y in pairs:
        if downsample:
            x, y = _matlab_downsample(x), _matlab_downsample(y)
        if min(x.shape) < 11:
            raise MetricInputError(f"ssim: image {x.shape} is smaller than the 11x11 window")
        maps.append(_ssim_terms(x, y, k, 255.0)[0])
    return maps[0] if len(maps) == 1 else np.mean(maps, axis=0)


def ssim(output: np.ndarray, reference: np.ndarray, downsample: bool = False, color: str = "gray") -> float:
    """Mean SSIM, Wang et al. variant (see the module docstring); in [-1, 1], 1 for identical images."""
    return float(np.mean(ssim_map(output, reference, downsample, color)))


def ssim_skimage(
    output: np.ndarray, reference: np.ndarray, data_range: float = 1.0, win_size: int = 7
) -> float:
    """scikit-image default SSIM: uniform ``win_size`` window, sample covariance, per-channel mean.

    Equals ``skimage.metrics.structural_similarity(out, ref, data_range=data_range, channel_axis=-1)``,
    including its choice of float32 arithmetic for float32 inputs (float64 otherwise).
    Accepts (H, W) or (H, W, C) arrays.
    """
    if output.shape != reference.shape:
        raise MetricInputError(f"ssim_skimage: shapes differ: {output.shape} vs {reference.shape}")
    if not (np.isfinite(output).all() and np.isfinite(reference).all()):
        raise MetricInputError("ssim_skimage: input contains NaN or Inf values")
    if min(output.shape[:2]) < win_size:
        raise MetricInputError(f"ssim_skimage: image {output.shape} is smaller than the {win_size}-pixel window")
    # like scikit-image: float32 inputs are computed in float32, everything else in float64
    ftype = np.float32 if output.dtype == np.float32 and reference.dtype == np.float32 else np.float64
    x = output.astype(ftype, copy=False)
    y = reference.astype(ftype, copy=False)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    npix = win_size**2
    cov_norm = npix / (npix - 1.0)
    pad = (win_size - 1) // 2
    vals = []
    for c in range(x.shape[2]):  # per channel: 1-channel arrays stay in cache
        a, b = np.ascontiguousarray(x[..., c]), np.ascontiguousarray(y[..., c])
        ux, uy, uxx, uyy, uxy = (ndimage.uniform_filter(z, size=win_size, mode="reflect")
                                 for z in (a, b, a * a, b * b, a * b))
        vx = cov_norm * (uxx - ux * ux)
        vy = cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        vals.append(float(s[pad:-pad, pad:-pad].mean(dtype=np.float64)))
    return float(np.mean(vals))


def check_ms_ssim_pair(output: np.ndarray, reference: np.ndarray) -> None:
    """:func:`check_pair`, and both sides at least :data:`MS_SSIM_MIN_SIDE` (the window fits the coarsest of
    the 5 scales): :class:`MetricInputError` otherwise."""
    check_pair(output, reference, "ms_ssim")
    if min(output.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise MetricInputError(f"ms_ssim: image {output.shape[:2]} too small; needs both sides >= {MS_SSIM_MIN_SIDE} "
                               f"for {len(MS_SSIM_WEIGHTS)} scales")


def ms_ssim(output: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Multi-scale SSIM on RGB (5 scales, per-channel then averaged); in [0, 1]. Needs both sides >= :data:`MS_SSIM_MIN_SIDE`."""
    check_ms_ssim_pair(output, reference)
    levels = len(MS_SSIM_WEIGHTS)
    k = gaussian_kernel1d(MS_SSIM_WINDOW, MS_SSIM_SIGMA)
    w = np.asarray(MS_SSIM_WEIGHTS)
    per_channel = []
    for c in range(3):
        x = output[..., c].astype(np.float64)
        y = reference[..., c].astype(np.float64)
        terms = []
        for lvl in range(levels):
            s, cs = _ssim_terms(x, y, k, data_range)
            terms.append(max(float(np.mean(cs if lvl < levels - 1 else s)), 0.0))
            if lvl < levels - 1:
                h, wd = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
                x = x[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
                y = y[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
        per_channel.append(float(np.prod(np.asarray(terms) ** w)))
    return float(np.mean(per_channel))
