"""The one place that picks a tier: every step of the analysis, run by the compiled CPU kernels
(:mod:`qa.metrics.invented.cpu`) where they take the tensors, by torch (:mod:`qa.metrics.invented.tensor`)
everywhere else. The method (:mod:`qa.metrics.invented.analysis`, ``local_fit``, ``fine_band``) calls only
these functions; the two tiers never import each other.

The rule: a step runs on the kernels when :data:`USE_KERNELS` is on and every tensor it takes is a float32 CPU
tensor that does not require grad (:func:`kernels_take`), plus what the kernel itself needs (a layout, a
minimum size, a decimated grid with the interpolator's reach: said per step). So on a CPU everything runs
compiled, on a GPU everything runs in torch; both give the same numbers up to float32 rounding
(``tests/metrics/invented/test_kernels.py`` runs each step both ways). Steps with no kernel (``luma``,
``bicubic``) always run in torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from qa.metrics.invented.coefficients import INTERP_HALF
from qa.metrics.invented.cpu import passes as cpu_passes
from qa.metrics.invented.cpu import spectral as cpu_spectral
from qa.metrics.invented.cpu import steps as cpu_steps
from qa.metrics.invented.cpu.threads import torch_serial
from qa.metrics.invented.model import MAP_CLOSING
from qa.metrics.invented.tensor import codec as tensor_codec
from qa.metrics.invented.tensor import filters as tensor_filters
from qa.metrics.invented.tensor import fine as tensor_fine
from qa.metrics.invented.tensor import fit as tensor_fit
from qa.metrics.invented.tensor import interp as tensor_interp
from qa.metrics.invented.tensor import pointwise as tensor_pointwise
from qa.metrics.invented.tensor import region_map as tensor_map
from qa.metrics.invented.tensor import spectral as tensor_spectral

#: run float32 CPU steps on the compiled kernels; False: the torch tier everywhere (the tests compare the two)
USE_KERNELS = True


def kernels_take(*xs: torch.Tensor) -> bool:
    """Whether the compiled kernels take these tensors: kernels on, all float32 CPU tensors without grad."""
    return USE_KERNELS and all(x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad
                               for x in xs)


def _interp_inside(stride: int, extra: int) -> bool:
    """Whether a coarse field (every ``stride`` px from ``-stride extra``) can be interpolated inside a kernel:
    a decimated grid with the interpolator's reach beyond the edges."""
    return stride > 1 and extra >= INTERP_HALF


@contextmanager
def threads_for(images: torch.Tensor) -> Iterator[None]:
    """Around a whole analysis of ``images``: on the CPU with the kernels on, torch on one thread and the kernels
    on the threads torch had (:func:`qa.metrics.invented.cpu.threads.torch_serial`); elsewhere nothing."""
    if USE_KERNELS and images.device.type == "cpu":
        with torch_serial():
            yield
    else:
        yield


# -- filters and interpolation -------------------------------------------------------------------------------
def blur_h(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0) -> torch.Tensor:
    """Gaussian along H of (..., H, W) (scipy ``reflect``, ``truncate=4``), decimated when asked: (..., n_out, W)."""
    if kernels_take(x):
        return cpu_passes.blur_h(x, sigma, stride, extra)
    return tensor_filters.blur_h(x, sigma, stride, extra)


def blur_w(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0) -> torch.Tensor:
    """Gaussian along W of (..., H, W), as :func:`blur_h`: (..., H, n_out)."""
    if kernels_take(x):
        return cpu_passes.blur_w(x, sigma, stride, extra)
    return tensor_filters.blur_w(x, sigma, stride, extra)


def blur2d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Full-resolution Gaussian of the last two axes of (..., H, W)."""
    if kernels_take(x):
        return cpu_passes.blur2d(x, sigma)
    return tensor_filters.blur2d(x, sigma)


def filter_valid(x: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """Separable filter by ``outer(taps, taps)`` (symmetric, odd length k) of the (H, W) planes of (..., H, W),
    valid region only: (..., H - k + 1, W - k + 1). The SSIM family's window means (fidelity metrics, not the
    analysis), on the same two tiers."""
    if kernels_take(x):
        return cpu_passes.filter_valid(x, taps)
    return tensor_filters.filter_valid(x, [float(t) for t in taps])


def window_moments(x: torch.Tensor, y: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """The SSIM family's window means of a pair: x, y, x^2, y^2 and xy of two (C, H, W) images filtered by
    ``outer(taps, taps)`` (symmetric, odd length k), valid region only: (5, C, H - k + 1, W - k + 1) (kernel:
    the products formed row by row inside the filter, in the layout :func:`ssim_means` reads; torch: the five
    planes, then :func:`filter_valid`)."""
    if kernels_take(x, y) and x.ndim == 3 and x.shape == y.shape:
        return cpu_passes.window_moments(x, y, taps)
    return tensor_filters.window_moments(x, y, [float(t) for t in taps])


def ssim_means(m: torch.Tensor, c1: float, c2: float, cov_norm: float = 1.0, full: bool = True,
               want_map: bool = False, shift: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The SSIM family's per-pixel formula on the window means ``m`` (5, C, h, w) of x, y, x^2, y^2, xy:
    per-channel means (C,) float64 of the contrast-structure term (``full``: times the luminance term, the SSIM)
    and, when ``want_map``, its (C, h, w) values (kernel: one fused pass; torch: element-wise ops). ``shift``:
    the constants (C,) the images were centred by before their moments were taken (none: 0), added back to the
    means of the luminance term."""
    if shift is None:
        zero = torch.zeros(m.shape[1], dtype=torch.float64)
        shift = (zero, zero)
    if kernels_take(m):
        return cpu_passes.ssim_means(m, c1, c2, cov_norm, full, want_map, shift)
    return tensor_filters.ssim_means(m, c1, c2, cov_norm, full, want_map, shift)


def window_products(feats: Sequence[torch.Tensor], pairs: list[tuple[int, int]], sigma: float, stride: int,
                    extra: int) -> torch.Tensor:
    """Decimated Gaussian-window means of ``feats[i] * feats[j]`` per pair: F (N, H, W) -> (P, N, h', w')."""
    if kernels_take(*feats):
        return cpu_passes.window_products(feats, pairs, sigma, stride, extra)
    return tensor_filters.window_products(feats, pairs, sigma, stride, extra)


def upsample_h(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., m, W) decimated samples along H -> (..., n, W) (kernel: a decimated grid, ``extra >= INTERP_HALF``)."""
    if kernels_take(c) and _interp_inside(stride, extra):
        return cpu_passes.upsample_h(c, n, stride, sigma, extra)
    return tensor_interp.upsample_h(c, n, stride, sigma, extra)


def upsample_w(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., H, m) decimated samples along W -> (..., H, n), as :func:`upsample_h`."""
    if kernels_take(c) and _interp_inside(stride, extra):
        return cpu_passes.upsample_w(c, n, stride, sigma, extra)
    return tensor_interp.upsample_w(c, n, stride, sigma, extra)


def bicubic(c: torch.Tensor, fh: int, fw: int) -> torch.Tensor:
    """torch's bicubic upsampling (``align_corners=False``) of (..., h, w) by (fh, fw) (torch tier only)."""
    return tensor_interp.bicubic(c, fh, fw)


# -- the local fit -------------------------------------------------------------------------------------------
def solve_fit(raw: torch.Tensor, pidx: np.ndarray, ridge_rel: float, ridge_abs: float
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Coefficients (four (N, h', w')) and explained energy of the local ridge fits with window moments ``raw``
    (P, N, h', w') (kernel: a permuted view of a contiguous (h', P, N, w') tensor, as ``window_products``)."""
    if kernels_take(raw) and raw.permute(2, 0, 1, 3).is_contiguous():
        return cpu_steps.solve_fit(raw, pidx, ridge_rel, ridge_abs)
    return tensor_fit.solve_fit(raw, pidx, ridge_rel, ridge_abs)


def features(rb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gx, gy, laplacian) of a band (N, H, W): ``numpy.gradient``, ``scipy.ndimage.laplace`` (kernel: H, W >= 2)."""
    if kernels_take(rb) and min(rb.shape[-2:]) >= 2:
        return cpu_steps.features(rb)
    return tensor_pointwise.features(rb)


def residual(target: torch.Tensor, feats: list[torch.Tensor], coef: list[torch.Tensor], stride: int,
             sigma: float, extra: int) -> torch.Tensor:
    """``target - sum_i c_i feats[i]`` with the coarse coefficient fields interpolated to full resolution."""
    if kernels_take(target, *feats, *coef) and _interp_inside(stride, extra):
        return cpu_steps.residual(target, feats, coef, stride, sigma, extra)
    return tensor_fit.residual(target, feats, coef, stride, sigma, extra)


def place(excess: torch.Tensor, floor: torch.Tensor, near: torch.Tensor, wide: torch.Tensor, stride: int,
          sigma: float, extra: int, into: torch.Tensor | None) -> torch.Tensor:
    """``max(0, excess - floor) * near / wide`` per pixel (coarse ``excess``, ``wide`` interpolated), into ``into``."""
    if kernels_take(excess, near, wide) and _interp_inside(stride, extra):
        return cpu_steps.place(excess, floor, near, wide, stride, sigma, extra, into)
    return tensor_fit.place(excess, floor, near, wide, stride, sigma, extra, into)


def percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row ``numpy.percentile(row, q)`` of an (N, M) tensor: (N,)."""
    if kernels_take(x):
        return cpu_steps.percentile(x, q)
    return tensor_pointwise.percentile(x, q)


# -- pointwise -----------------------------------------------------------------------------------------------
def luma(rgb: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of (N, 3, H, W) images: (N, H, W) (torch tier only: the HF energy and the seed std)."""
    return tensor_pointwise.luma(rgb)


def luma_into(rgb: torch.Tensor, out: torch.Tensor) -> None:
    """Rec. 601 luma of (N, 3, H, W) ``rgb`` into (N, H, W) ``out`` (kernel: float32 stored channels-last, the
    engine's (N, H, W, 3) arrays permuted, and a contiguous ``out``)."""
    hwc = rgb.permute(0, 2, 3, 1)
    if kernels_take(hwc, out) and hwc.is_contiguous() and out.is_contiguous():
        cpu_steps.luma_into(rgb, out)
    else:
        tensor_pointwise.luma_into(rgb, out)


def band(low: torch.Tensor, lower: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``low - lower`` of (B, H, W) Gaussians and its (B,) float64 energy per plane."""
    if kernels_take(low, lower) and low.shape == lower.shape and low.ndim == 3:
        return cpu_steps.band(low, lower)
    return tensor_pointwise.band(low, lower)


def sub(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - b`` (kernel: (B, H, W) fields of one shape)."""
    if kernels_take(a, b) and a.shape == b.shape and a.ndim == 3:
        return cpu_steps.sub(a, b)
    return tensor_pointwise.sub(a, b)


def squared(x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """``x * x``, written over ``x`` when ``in_place`` (kernel: a contiguous (B, H, W) field)."""
    if kernels_take(x) and x.ndim == 3 and x.is_contiguous():
        return cpu_steps.squared(x, in_place)
    return tensor_pointwise.squared(x, in_place)


def plane_sums(x: torch.Tensor) -> torch.Tensor:
    """(B,) float64 sums over the planes of (B, H, W) ``x``."""
    if kernels_take(x) and x.ndim == 3:
        return cpu_steps.plane_sums(x)
    return tensor_pointwise.plane_sums(x)


def shift_pairs(r: torch.Tensor, offsets: tuple[tuple[int, int], ...]) -> list[torch.Tensor]:
    """``r(x + d) + r(x - d)`` of (N, H, W) ``r`` for each offset, reflect borders (kernel: sides > |d|)."""
    reach = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    if kernels_take(r) and r.ndim == 3 and min(r.shape[-2:]) > reach:
        return cpu_steps.shift_pairs(r, offsets)
    return tensor_pointwise.shift_pairs(r, offsets)


# -- the finest band, the codec cap, the map -----------------------------------------------------------------
def block_means(a: torch.Tensor, b: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """(2, N, H / bh, W / bw) block means of ``a`` and ``a * b`` ((N, H, W))."""
    if kernels_take(a, b):
        return cpu_steps.block_means(a, b, bh, bw)
    return tensor_fine.block_means(a, b, bh, bw)


def surround_level(rows: torch.Tensor, fw: int, ref: torch.Tensor) -> torch.Tensor:
    """``a + b ref`` (N, H, W) from coefficients ``rows`` (2, N, H, W / fw) already interpolated along H,
    bicubic along W."""
    if kernels_take(rows, ref):
        return cpu_steps.surround_level(rows, fw, ref)
    return tensor_fine.surround_level(rows, fw, ref)


def fine_combine(u: torch.Tensor, ref: torch.Tensor, pred: torch.Tensor, level: torch.Tensor, near: torch.Tensor,
                 floor: float, tol: float, pmin: float, factor: float) -> torch.Tensor:
    """The finest band's per-pixel invented energy from its fields (all (N, H, W))."""
    if kernels_take(u, ref, pred, level, near):
        return cpu_steps.fine_combine(u, ref, pred, level, near, floor, tol, pmin, factor)
    return tensor_fine.fine_combine(u, ref, pred, level, near, floor, tol, pmin, factor)


def codec_caps(y_out: torch.Tensor, y_ref: torch.Tensor, totals: list[torch.Tensor], fine: torch.Tensor, block: int,
               slack: float, factor: float) -> list[torch.Tensor]:
    """The codec cap of each of ``totals`` (the blocks' codec excess of the pair computed once): each field's
    scaled total ``(field + fine) x scale``, with the unscaled ``fine``, returned (written over it), then ``fine``
    scaled per block in place by the first field's scale, as the oracle caps the share's total and the region
    score's separately (kernel: contiguous fields and ``fine``)."""
    if kernels_take(y_out, y_ref, fine, *totals) and fine.is_contiguous() and all(t.is_contiguous() for t in totals):
        return cpu_steps.codec_caps(y_out, y_ref, totals, fine, block, slack, factor)
    return tensor_codec.codec_caps(y_out, y_ref, totals, fine, block, slack, factor)


def codec_cap(y_out: torch.Tensor, y_ref: torch.Tensor, inv: torch.Tensor, fine: torch.Tensor, block: int,
              slack: float, factor: float) -> torch.Tensor:
    """The codec cap: ``fine`` scaled per block in place, the scaled total ``(inv + fine) x scale`` returned
    (written over ``inv``; :func:`codec_caps` of one field)."""
    return codec_caps(y_out, y_ref, [inv], fine, block, slack, factor)[0]


def region_map(energy: torch.Tensor, change: torch.Tensor | None = None) -> torch.Tensor:
    """The map of (N, H, W) invented energy (luma^2): the square root of its grey closing by a (2
    ``MAP_CLOSING`` + 1)-px square, float32 luma units; samples beyond the edges are ignored (the oracle's
    ``nearest`` edge rule, for a square). ``change`` (N, H, W), output minus reference luma, bounds the energy
    first (``min(energy, change^2)``, pixel by pixel); the closing's holes are filled last (:func:`fill_holes`)."""
    if change is not None:
        energy = change_bound(energy, change)
    if energy.ndim == 3 and kernels_take(energy):
        return fill_holes(cpu_steps.region_map(energy, MAP_CLOSING))
    return fill_holes(tensor_map.region_map(energy, MAP_CLOSING))


def fill_holes(maps: torch.Tensor) -> torch.Tensor:
    """The grey hole filling of (N, H, W) maps (reconstruction by erosion from the border, 8-connected), a new
    tensor."""
    if maps.ndim == 3 and kernels_take(maps):
        return cpu_steps.fill_holes(maps)
    return tensor_map.fill_holes(maps)


def change_bound(energy: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """``min(energy, change^2)`` of (N, H, W) invented energy and output minus reference luma, a new tensor."""
    if energy.ndim == 3 and kernels_take(energy, change):
        return cpu_steps.change_bound(energy, change)
    return tensor_map.change_bound(energy, change)


def window_sums(values: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(float64 sums, bool "holds a non-zero value") of every ``side`` x ``side`` window of an (H, W) numpy map,
    for :mod:`qa.metrics.invented.regions` (kernel: a float32 or float64 map, numpy's integral-image numbers);
    None where no kernel runs (the caller's numpy integral image)."""
    if USE_KERNELS and values.ndim == 2 and values.dtype in (np.float32, np.float64):
        return cpu_steps.window_sums(values, side)
    return None


# -- the spectral rule ---------------------------------------------------------------------------------------
def periodograms(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, side: int) -> torch.Tensor:
    """(K, side, side // 2 + 1) Hann half periodograms of the ``side`` px windows of (H, W) ``x`` at origins
    (``ys``, ``xs``) (kernel: the tapered windows, gathered and multiplied in one pass, and the power of a 2-D
    ``x``; the FFTs in torch on both tiers)."""
    taps, norm = tensor_spectral.hann_taps(side, str(x.device))
    if kernels_take(x) and x.ndim == 2:
        return cpu_spectral.periodograms(x, ys, xs, taps, norm)
    return tensor_spectral.half_power(tensor_spectral.hann_windows(x, ys, xs, taps), norm)


def narrowband_energy(p: torch.Tensor, q: torch.Tensor, envelope: int, peak: float, ref: float) -> torch.Tensor:
    """(K,) per window: the residual's (``p``) narrowband energy the reference (``q``) lacks, from half
    periodograms (K, n, n // 2 + 1)."""
    if kernels_take(p, q) and p.ndim == 3:
        return cpu_spectral.narrowband_energy(p, q, envelope, peak, ref)
    return tensor_spectral.narrowband_energy(p, q, envelope, peak, ref)
