"""The SSIM family and PSNR in torch on the run's device: the fast paths of the ``ssim``, ``agreement_ssim``,
``ssim_skimage``, ``ms_ssim``, ``psnr`` and ``agreement_psnr`` metrics.

Same definitions as :mod:`qa.metrics.functional.fidelity` (the float64 references they are tested against):

- the MATLAB SSIM on ``rgb2gray(im2uint8(.))`` levels (the reference's own float64 function, so the levels are
  the same integers), Gaussian 11x11 sigma 1.5 "valid" window, population covariance;
- scikit-image's default SSIM (7x7 uniform window, sample covariance, per RGB channel, 3-px border excluded);
- MS-SSIM (5 scales on RGB, Gaussian 11x11 valid window, 2x2 average pooling, negative terms clipped at 0).

The window means are float32 separable filters of the valid region only (no border rule is needed: the
excluded border is exactly what a border rule would change), run by the invented-detail dispatcher's tiers
(:func:`qa.metrics.invented.dispatch.filter_valid`: the compiled kernels on a CPU, a grouped convolution on a
GPU; a pair's five moments x, y, x^2, y^2, xy in one :func:`~qa.metrics.invented.dispatch.window_moments`, whose
kernel forms the products row by row inside the filter); per-pixel arithmetic in float32, means accumulated in
float64. Agreement with the float64 references:
about 1e-7 on the mean of 2048 px photos (tests hold 2e-6); maps to about 5e-4 per pixel (maps are drawn at 8
bits). What is computed once per image (its float32 (3, H, W) tensor, its MATLAB luma and the luma's window
moments) is an :class:`ImagePlanes`, shared by every pair the image is in (see :func:`planes_of`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as tf

from qa.metrics.base import same_pixels
from qa.metrics.functional.fidelity import (
    _K1,
    _K2,
    MS_SSIM_SIGMA,
    MS_SSIM_WEIGHTS,
    MS_SSIM_WINDOW,
    check_ms_ssim_pair,
    gaussian_kernel1d,
    matlab_gray_uint8,
)
from qa.metrics.invented.dispatch import filter_valid, ssim_means, window_moments
from qa.metrics.torch_memory import keep_freed_memory

#: the MATLAB SSIM's and MS-SSIM's window taps, and scikit-image's 7-px uniform window as window *sums*
#: (divided by 49 afterwards: float32 taps of 1/7 sum to 1 + 4e-8, a bias every variance would inherit, about
#: 1e-5 on the SSIM of a photo; a correctly rounded division has none)
GAUSS_TAPS = gaussian_kernel1d(MS_SSIM_WINDOW, MS_SSIM_SIGMA).astype(np.float32)
SKIMAGE_WIN = 7
BOX_TAPS = np.ones(SKIMAGE_WIN, np.float32)


class ImagePlanes:
    """One (H, W, 3) float image in [0, 1] and what every SSIM-family pair it is in shares, made on first use:
    ``chw`` (3, H, W) float32 on ``device``, ``gray`` (H, W) MATLAB luma levels 0..255 (float32, exact
    integers) and ``gray_moments`` (2, H - 10, W - 10): the Gaussian window means of the luma and its square."""

    def __init__(self, pixels: np.ndarray, device: str | torch.device = "cpu") -> None:
        self.pixels = pixels
        self.device = torch.device(device)
        self._chw: torch.Tensor | None = None
        self._gray: torch.Tensor | None = None
        self._gray_moments: torch.Tensor | None = None

    @property
    def chw(self) -> torch.Tensor:
        """(3, H, W) float32 on the device (one copy of the pixels)."""
        if self._chw is None:
            arr = np.asarray(self.pixels, dtype=np.float32)
            self._chw = torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, 2, 0))).to(self.device)
        return self._chw

    @property
    def gray(self) -> torch.Tensor:
        """MATLAB ``rgb2gray(im2uint8(img))`` levels: :func:`~qa.metrics.functional.fidelity.matlab_gray_uint8`
        itself (float64 numpy, faster on a CPU than torch's float64), stored as float32 (exact integers)."""
        if self._gray is None:
            levels = matlab_gray_uint8(np.asarray(self.pixels)).astype(np.float32)
            self._gray = torch.from_numpy(levels).to(self.device)
        return self._gray

    @property
    def gray_moments(self) -> torch.Tensor:
        """(2, H - 10, W - 10): Gaussian window means of the luma and of its square."""
        if self._gray_moments is None:
            g = self.gray
            self._gray_moments = filter_valid(torch.stack([g, g * g]), GAUSS_TAPS)
        return self._gray_moments


class _Scope:
    """The :class:`ImagePlanes` of the arrays of one scope (the samples a metric's ``prepare`` was given), by
    array identity; the arrays are held, so an id names one array while the scope lasts. Arrays with the same
    pixels (a decoder's plain decode equal to its output) share one :class:`ImagePlanes`, and a pair's SSIM is
    computed once (``ssim`` and ``baseline_ssim`` of such a decoder are the same pair of planes)."""

    def __init__(self) -> None:
        self.key: int | None = None
        self.planes: dict[tuple[int, str], tuple[np.ndarray, ImagePlanes]] = {}
        self.ssim: dict[tuple[int, int], tuple[float, torch.Tensor | None]] = {}

    def enter(self, scope: object) -> None:
        if self.key != id(scope):
            self.key, self.planes, self.ssim = id(scope), {}, {}

    def clear(self) -> None:
        self.key, self.planes, self.ssim = None, {}, {}

    def held(self, planes: ImagePlanes) -> bool:
        """Whether ``planes`` belongs to this scope (so its id names it while the scope lasts)."""
        return any(p is planes for _, p in self.planes.values())


SCOPE = _Scope()


def planes_of(pixels: np.ndarray, device: str | torch.device = "cpu") -> ImagePlanes:
    """The :class:`ImagePlanes` of ``pixels``: shared within the current scope (``enter_scope``) by every array
    with the same pixels (dtype and shape), else new."""
    dev = torch.device(device)
    if SCOPE.key is None:
        return ImagePlanes(pixels, dev)
    key = (id(pixels), str(dev))
    held = SCOPE.planes.get(key)
    if held is None or held[0] is not pixels:
        twin = next((p for arr, p in SCOPE.planes.values()
                     if p.device == dev and arr.dtype == pixels.dtype and same_pixels(arr, pixels)), None)
        held = (pixels, twin if twin is not None else ImagePlanes(pixels, dev))
        SCOPE.planes[key] = held
    return held[1]


def enter_scope(scope: object) -> None:
    """Share the planes of every array seen until a different ``scope`` object is entered (the engine passes
    the samples list of one case to each metric's ``prepare``)."""
    SCOPE.enter(scope)


def ssim_gray(a: ImagePlanes, b: ImagePlanes, want_map: bool = False) -> tuple[float, torch.Tensor | None]:
    """The MATLAB SSIM of two images' luma and, when asked, its map (valid region, (H - 10, W - 10) float32);
    computed once per pair of a scope's planes, with its map (whichever metric asks first: ``baseline_ssim``
    wants none, ``ssim`` after it does; shared, never written to)."""
    key = (id(a), id(b))
    result = SCOPE.ssim.get(key)
    if result is None:
        scoped = SCOPE.held(a) and SCOPE.held(b)
        result = _ssim_gray(a, b, want_map or scoped)
        if scoped:
            SCOPE.ssim[key] = result
    return result if want_map else (result[0], None)


def _ssim_gray(a: ImagePlanes, b: ImagePlanes, want_map: bool) -> tuple[float, torch.Tensor | None]:
    c1, c2 = (_K1 * 255.0) ** 2, (_K2 * 255.0) ** 2
    mx, exx = a.gray_moments
    my, eyy = b.gray_moments
    exy = filter_valid((a.gray * b.gray)[None], GAUSS_TAPS)[0]
    # (h, 5, 1, w): the layout the compiled formula reads (window_moments'), viewed as (5, 1, h, w)
    moments = torch.stack([mx, my, exx, eyy, exy], dim=1)[:, :, None].permute(1, 2, 0, 3)
    means, smap = ssim_means(moments, c1, c2, full=True, want_map=want_map)
    return float(means[0]), (smap[0] if smap is not None else None)


def ssim_skimage_value(a: ImagePlanes, b: ImagePlanes, data_range: float = 1.0) -> float:
    """scikit-image's default SSIM (7x7 uniform window, ddof 1, mean of the RGB channels' valid-region means)."""
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    npix = SKIMAGE_WIN**2
    moments = window_moments(a.chw, b.chw, BOX_TAPS).div_(float(npix))
    means, _ = ssim_means(moments, c1, c2, cov_norm=npix / (npix - 1.0), full=True)
    return float(means.mean())


def ms_ssim_planes(a: ImagePlanes, b: ImagePlanes, data_range: float = 1.0) -> float:
    """MS-SSIM of two images (both sides > 160 px, checked by the caller), in [0, 1]."""
    levels = len(MS_SSIM_WEIGHTS)
    keep_freed_memory()  # as the invented-detail analysis: intermediates reuse freed memory (process-wide)
    x, y = a.chw, b.chw
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    terms = []
    for lvl in range(levels):
        moments = window_moments(x, y, GAUSS_TAPS)
        means, _ = ssim_means(moments, c1, c2, full=lvl == levels - 1)  # cs, and the whole SSIM at the last
        terms.append(means.to(x.device).clamp(min=0))
        if lvl < levels - 1:
            h, w = (x.shape[1] // 2) * 2, (x.shape[2] // 2) * 2
            x = tf.avg_pool2d(x[None, :, :h, :w], 2)[0]
            y = tf.avg_pool2d(y[None, :, :h, :w], 2)[0]
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=x.device)
    return float(torch.prod(torch.stack(terms) ** weights[:, None], dim=0).mean())


def ms_ssim_torch(output: np.ndarray, reference: np.ndarray, data_range: float = 1.0, device: str = "cpu") -> float:
    """MS-SSIM of two (H, W, 3) images (both sides > 160 px), in [0, 1]; float32 on ``device``."""
    check_ms_ssim_pair(output, reference)
    with torch.inference_mode():
        return ms_ssim_planes(planes_of(output, device), planes_of(reference, device), data_range)


def psnr_torch(a: ImagePlanes, b: ImagePlanes, data_range: float = 1.0) -> float:
    """PSNR in dB over RGB (squared differences summed in float64 on the device); +inf for identical images."""
    d = (a.chw - b.chw).double()
    mse = float((d * d).mean())
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(data_range**2 / mse))
