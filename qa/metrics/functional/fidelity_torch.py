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
from qa.metrics.batching import by_size
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
    integers) and ``gray_moments`` (2, H - 10, W - 10): the Gaussian window means of the luma and its square.

    The SSIM family's moments are taken of the image centred by a constant (``gray_shift``: its mean luma level,
    rounded, so the centred levels stay exact integers; ``rgb_shift``: each channel's mean, as float32): a
    window's variance E[x^2] - E[x]^2 is the same for any shift, but in float32 a bright, flat window's two terms
    nearly cancel (an SSIM above 1 on a flat 0.9 card, 6e-5 off); centred, they are small. The shift is added
    back to the means where the luminance term needs them (``ssim_means(..., shift=...)``)."""

    def __init__(self, pixels: np.ndarray, device: str | torch.device = "cpu") -> None:
        self.pixels = pixels
        self.device = torch.device(device)
        self._chw: torch.Tensor | None = None
        self._gray: torch.Tensor | None = None
        self._gray_moments: torch.Tensor | None = None
        self._centred: tuple[torch.Tensor, torch.Tensor] | None = None
        self._gray_shift: float | None = None

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
    def gray_shift(self) -> float:
        """The luma level the gray planes are centred by: the image's mean level, rounded (0..255)."""
        if self._gray_shift is None:
            self._gray_shift = float(round(float(self.gray.double().mean())))
        return self._gray_shift

    @property
    def gray_moments(self) -> torch.Tensor:
        """(2, H - 10, W - 10): Gaussian window means of the centred luma (``gray - gray_shift``, exact integers)
        and of its square."""
        if self._gray_moments is None:
            g = self.gray - self.gray_shift
            self._gray_moments = filter_valid(torch.stack([g, g * g]), GAUSS_TAPS)
        return self._gray_moments

    @property
    def centred(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(``chw`` minus each channel's mean, the (3,) float32 means): what the RGB SSIMs take moments of."""
        if self._centred is None:
            shift = self.chw.double().mean(dim=(1, 2)).float()
            self._centred = (self.chw - shift[:, None, None], shift)
        return self._centred


class _Scope:
    """The :class:`ImagePlanes` of the arrays of one scope (the samples a metric's ``prepare`` was given), by
    array identity; the arrays are held, so an id names one array while the scope lasts. Arrays with the same
    pixels (a decoder's plain decode equal to its output) share one :class:`ImagePlanes`, and a pair's SSIM is
    computed once (``ssim`` and ``baseline_ssim`` of such a decoder are the same pair of planes). ``values``:
    what :func:`prefill` computed for pairs of planes, by (kind, id, id)."""

    def __init__(self) -> None:
        self.key: int | None = None
        self.planes: dict[tuple[int, str], tuple[np.ndarray, ImagePlanes]] = {}
        self.ssim: dict[tuple[int, int], tuple[float, torch.Tensor | None]] = {}
        self.values: dict[tuple[str, int, int], float] = {}

    def enter(self, scope: object) -> None:
        if self.key != id(scope):
            self.key, self.planes, self.ssim, self.values = id(scope), {}, {}, {}

    def clear(self) -> None:
        self.key, self.planes, self.ssim, self.values = None, {}, {}, {}

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
    wants none, ``ssim`` after it does; or :func:`prefill`; shared, never written to)."""
    key = (id(a), id(b))
    result = SCOPE.ssim.get(key)
    if result is None:
        scoped = SCOPE.held(a) and SCOPE.held(b)
        value, smap = _ssim_gray([a], [b], want_map or scoped)
        result = (value[0], smap[0] if smap is not None else None)
        if scoped:
            SCOPE.ssim[key] = result
    return result if want_map else (result[0], None)


def _ssim_gray(a: list[ImagePlanes], b: list[ImagePlanes], want_map: bool) -> tuple[list[float], torch.Tensor | None]:
    """The MATLAB SSIM of N pairs of one size: N values and, when asked, the (N, H - 10, W - 10) maps."""
    c1, c2 = (_K1 * 255.0) ** 2, (_K2 * 255.0) ** 2
    gx, gy = [p.gray - p.gray_shift for p in a], [p.gray - p.gray_shift for p in b]  # centred: see ImagePlanes
    prods = torch.stack([x * y for x, y in zip(gx, gy, strict=True)]) if len(a) > 1 else (gx[0] * gy[0])[None]
    exy = filter_valid(prods, GAUSS_TAPS)  # (N, h, w)
    # (h, 5, N, w): the layout the compiled formula reads (window_moments'), viewed as (5, N, h, w)
    moments = torch.empty((exy.shape[1], 5, len(a), exy.shape[2]), dtype=exy.dtype, device=exy.device)
    for i, (pa, pb) in enumerate(zip(a, b, strict=True)):
        for k, plane in enumerate((pa.gray_moments[0], pb.gray_moments[0], pa.gray_moments[1], pb.gray_moments[1])):
            moments[:, k, i].copy_(plane)
    moments[:, 4].copy_(exy.permute(1, 0, 2))
    moments = moments.permute(1, 2, 0, 3)
    shift = (torch.tensor([p.gray_shift for p in a], dtype=torch.float64),
             torch.tensor([p.gray_shift for p in b], dtype=torch.float64))
    means, smap = ssim_means(moments, c1, c2, full=True, want_map=want_map, shift=shift)
    return [float(v) for v in means], smap


def _rgb(planes: list[ImagePlanes]) -> torch.Tensor:
    """The images' RGB planes as one (3 N, H, W) float32 tensor (the one image's own planes when N is 1)."""
    return planes[0].chw if len(planes) == 1 else torch.cat([p.chw for p in planes])


def _centred_rgb(planes: list[ImagePlanes]) -> tuple[torch.Tensor, torch.Tensor]:
    """The images' centred RGB planes (3 N, H, W) and their (3 N,) float64 shifts (:attr:`ImagePlanes.centred`)."""
    if len(planes) == 1:
        x, shift = planes[0].centred
    else:
        x = torch.cat([p.centred[0] for p in planes])
        shift = torch.cat([p.centred[1] for p in planes])
    return x, shift.double().cpu()


def ssim_skimage_value(a: ImagePlanes, b: ImagePlanes, data_range: float = 1.0) -> float:
    """scikit-image's default SSIM (7x7 uniform window, ddof 1, mean of the RGB channels' valid-region means)."""
    done = SCOPE.values.get(("ssim_skimage", id(a), id(b)))
    return done if done is not None else _ssim_skimage([a], [b], data_range)[0]


def _ssim_skimage(a: list[ImagePlanes], b: list[ImagePlanes], data_range: float = 1.0) -> list[float]:
    """:func:`ssim_skimage_value` of N pairs of one size."""
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    npix = SKIMAGE_WIN**2
    (x, sx), (y, sy) = _centred_rgb(a), _centred_rgb(b)
    moments = window_moments(x, y, BOX_TAPS).div_(float(npix))
    means, _ = ssim_means(moments, c1, c2, cov_norm=npix / (npix - 1.0), full=True, shift=(sx, sy))
    return [float(v) for v in means.view(len(a), 3).mean(dim=1)]


def ms_ssim_planes(a: ImagePlanes, b: ImagePlanes, data_range: float = 1.0) -> float:
    """MS-SSIM of two images (both sides >= ``MS_SSIM_MIN_SIDE``, checked by the caller), in [0, 1]."""
    done = SCOPE.values.get(("ms_ssim", id(a), id(b)))
    return done if done is not None else _ms_ssim([a], [b], data_range)[0]


def _ms_ssim(a: list[ImagePlanes], b: list[ImagePlanes], data_range: float = 1.0) -> list[float]:
    """:func:`ms_ssim_planes` of N pairs of one size."""
    levels = len(MS_SSIM_WEIGHTS)
    keep_freed_memory()  # as the invented-detail analysis: intermediates reuse freed memory (process-wide)
    n = len(a)
    # (3 N, H, W), centred (ImagePlanes): 2 x 2 means of a centred image are the centred means, one shift a level
    (x, sx), (y, sy) = _centred_rgb(a), _centred_rgb(b)
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    terms = []
    for lvl in range(levels):
        moments = window_moments(x, y, GAUSS_TAPS)
        means, _ = ssim_means(moments, c1, c2, full=lvl == levels - 1, shift=(sx, sy))  # cs; the SSIM at the last
        terms.append(means.to(x.device).clamp(min=0))
        if lvl < levels - 1:
            h, w = (x.shape[1] // 2) * 2, (x.shape[2] // 2) * 2
            x = tf.avg_pool2d(x.view(n, 3, *x.shape[1:])[:, :, :h, :w], 2).view(3 * n, h // 2, w // 2)
            y = tf.avg_pool2d(y.view(n, 3, *y.shape[1:])[:, :, :h, :w], 2).view(3 * n, h // 2, w // 2)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=x.device)
    per_channel = torch.prod(torch.stack(terms) ** weights[:, None], dim=0)
    return [float(v) for v in per_channel.view(n, 3).mean(dim=1)]


def ms_ssim_torch(output: np.ndarray, reference: np.ndarray, data_range: float = 1.0, device: str = "cpu") -> float:
    """MS-SSIM of two (H, W, 3) images (both sides >= ``MS_SSIM_MIN_SIDE``), in [0, 1]; float32 on ``device``."""
    check_ms_ssim_pair(output, reference)
    with torch.inference_mode():
        return ms_ssim_planes(planes_of(output, device), planes_of(reference, device), data_range)


def psnr_torch(a: ImagePlanes, b: ImagePlanes, data_range: float = 1.0) -> float:
    """PSNR in dB over RGB (squared differences summed in float64 on the device); +inf for identical images."""
    done = SCOPE.values.get(("psnr", id(a), id(b)))
    return done if done is not None else _psnr([a], [b], data_range)[0]


def _psnr(a: list[ImagePlanes], b: list[ImagePlanes], data_range: float = 1.0) -> list[float]:
    """:func:`psnr_torch` of N pairs of one size."""
    d = (_rgb(a) - _rgb(b)).double().view(len(a), -1)
    mse = (d * d).mean(dim=1).tolist()
    return [float("inf") if m == 0.0 else float(10.0 * np.log10(data_range**2 / m)) for m in mse]


#: the pair values :func:`prefill` computes, by kind: N pairs of planes of one size -> N values
_BATCHED = {"psnr": _psnr, "ssim_skimage": _ssim_skimage, "ms_ssim": _ms_ssim}


def prefill(kind: str, pairs: list[tuple[np.ndarray, np.ndarray]], device: str | torch.device) -> None:
    """Compute ``kind`` ("psnr", "ssim": the MATLAB SSIM with its map, "ssim_skimage" or "ms_ssim") of every pair
    of the current scope's arrays in torch calls of one image size (at most
    :data:`~qa.metrics.batching.BATCH_PIXELS` per image slot) on ``device``, where the per-pair functions above
    find them. ``pairs``: checked (H, W, 3) pairs of one size each, finite, not the same pixels, large enough
    for the kind's window; pairs already computed in the scope are not computed again."""
    if SCOPE.key is None:
        raise ValueError("prefill needs a scope (enter_scope) to keep its values in")
    dev = torch.device(device)
    seen: set[tuple[int, int]] = set()
    todo = []
    for x, y in pairs:
        pa, pb = planes_of(x, dev), planes_of(y, dev)
        key = (id(pa), id(pb))
        known = key in SCOPE.ssim if kind == "ssim" else (kind, *key) in SCOPE.values
        if not known and key not in seen:
            seen.add(key)
            todo.append((x, pa, pb))
    with torch.inference_mode():
        for group in by_size(todo):
            a, b = [g[1] for g in group], [g[2] for g in group]
            if kind == "ssim":
                values, smaps = _ssim_gray(a, b, want_map=True)
                assert smaps is not None  # asked for
                for pa, pb, v, m in zip(a, b, values, smaps, strict=True):
                    SCOPE.ssim[(id(pa), id(pb))] = (v, m)
                continue
            for pa, pb, v in zip(a, b, _BATCHED[kind](a, b), strict=True):
                SCOPE.values[(kind, id(pa), id(pb))] = v
