"""The finest-band channel of the invented-detail analysis in torch float32 (the oracle's ``fine_channel``).

Same model and constants as :mod:`qa.metrics.invented.functional` (``fine_stats``, ``predictability``,
``_surround_level``, ``fine_channel``); built from the machinery of :mod:`qa.metrics.invented.torch_analysis`:

- the finest band's local least-squares fit (sigma-4 window, four reference features) is solved on the coarse
  grid and its four coefficient fields are interpolated back, then applied pixel by pixel as in the oracle;
- the residual's predictability from its neighbours is a second local fit on the coarse grid (interpolated);
- the sigma-64 surround, far smoother than any grid needs, is a 4x4 block mean, a Gaussian on that grid and a
  bicubic interpolation back (its error is below 1e-4 of the field, see ``tests/invented/test_torch_fine.py``).

Tensors are (N, H, W) float32 luma(-derived) fields.
"""

from __future__ import annotations

import torch
import torch.nn.functional as Fn

from qa.metrics.invented import cpu_steps as C
from qa.metrics.invented import functional as F
from qa.metrics.invented import torch_analysis as A
from qa.metrics.invented import torch_passes as P

#: coarse-grid strides of the finest band's fit (its coefficients multiply the features pixel by pixel, so they
#: must be accurate) and of the predictability fit
FIT_STRIDE = 2
PRED_STRIDE = 2
#: block side of the decimated grid of the surround Gaussian
SURROUND_BLOCK = 4


def shift_pair(r: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``r(x + d) + r(x - d)`` for d = (dy, dx), |dy|, |dx| <= 2, borders mirrored as the oracle's ``_shift``
    (``numpy.pad(mode="reflect")``)."""
    h, w = r.shape[-2:]
    p = Fn.pad(r[:, None], (2, 2, 2, 2), mode="reflect")[:, 0]
    return p[:, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] + p[:, 2 - dy : 2 - dy + h, 2 - dx : 2 - dx + w]


def _block(n: int, block: int) -> int:
    """The largest of ``block``, ``block / 2``, ..., 1 that divides ``n`` (so that the block means keep the
    image's mirror symmetry at both borders, which scipy's ``reflect`` rule assumes)."""
    while n % block:
        block //= 2
    return block


def wide_blur(x: torch.Tensor, sigma: float, block: int = SURROUND_BLOCK) -> torch.Tensor:
    """Gaussian (sigma px, scipy ``reflect``) of smooth (K, H, W) fields for sigma >> ``block``: block means
    (side ``block``, or the largest power-of-two fraction of it that divides the axis), the Gaussian on that grid
    (sigma reduced by the block's own variance), bicubic back to full resolution."""
    coarse, bh, bw = wide_blur_coarse(x, sigma, block)
    return P.bicubic(coarse, bh, bw)


def wide_blur_coarse(x: torch.Tensor, sigma: float, block: int = SURROUND_BLOCK) -> tuple[torch.Tensor, int, int]:
    """:func:`wide_blur` before its bicubic step: the (K, H / bh, W / bw) block grid and its block sides."""
    _, h, w = x.shape
    bh, bw = _block(h, block), _block(w, block)
    return _blur_blocks(Fn.avg_pool2d(x[:, None], (bh, bw))[:, 0], sigma, bh, bw), bh, bw


def _blur_blocks(coarse: torch.Tensor, sigma: float, bh: int, bw: int) -> torch.Tensor:
    """The Gaussian (sigma px) of block means (K, H / bh, W / bw), on their grid (sigma reduced by the blocks'
    own variance)."""
    coarse = P.blur_h(coarse, (sigma**2 - (bh**2 - 1) / 12.0) ** 0.5 / bh)
    return P.blur_w(coarse, (sigma**2 - (bw**2 - 1) / 12.0) ** 0.5 / bw)


def _level_coefficients(su: torch.Tensor, sru: torch.Tensor, sr: torch.Tensor, srr: torch.Tensor) -> torch.Tensor:
    """The oracle's ``_surround_level`` fit from the window means of u, ref x u, ref and ref^2: (2, ...) = (a, b),
    the constrained least-squares optimum (a, b >= 0)."""
    b = (sru - sr * su) / (srr - sr * sr).clamp_min(1e-30)
    a = su - b * sr
    b = torch.where(a < 0, sru / srr.clamp_min(1e-30), b)
    a = torch.where(a < 0, torch.zeros_like(a), a)
    a = torch.where(b < 0, su, a)
    return torch.stack([a, b.clamp_min(0.0)])


def surround_level(u: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """The oracle's ``_surround_level``: benign residual level a + b x ref, (a, b) >= 0 fitted to ``u`` by least
    squares in a Gaussian window of sigma ``SURROUND_SIGMA`` (the window of a constant is 1). The fit is made on
    the surround's block grid, where the window means live, and only a and b are brought to full resolution."""
    return _Surround(ref).level(u)


def _pair_coarse(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """:func:`wide_blur_coarse` of ``a`` and ``a * b`` (each (N, H, W), sigma ``SURROUND_SIGMA``): the two
    (N, H / bh, W / bw) fields and the block sides (on the CPU the block means of the product are taken without
    forming it)."""
    _, h, w = a.shape
    bh, bw = _block(h, SURROUND_BLOCK), _block(w, SURROUND_BLOCK)
    if C.ok(a, b):
        coarse = _blur_blocks(C.block_means(a, b, bh, bw).flatten(0, 1), F.SURROUND_SIGMA, bh, bw)
    else:
        coarse = wide_blur_coarse(torch.cat([a, a * b]), F.SURROUND_SIGMA)[0]
    first, second = coarse.chunk(2)
    return first, second, bh, bw


class _Surround:
    """The surround fit's reference-only window means (ref, ref^2), computed once for both robust passes."""

    def __init__(self, ref: torch.Tensor) -> None:
        self.ref = ref
        self.sr, self.srr, self.bh, self.bw = _pair_coarse(ref, ref)

    def level(self, u: torch.Tensor) -> torch.Tensor:
        su, sru, _, _ = _pair_coarse(u, self.ref)
        ab = _level_coefficients(su, sru, self.sr, self.srr)  # (2, N, H / bh, W / bw)
        if C.ok(ab, self.ref):
            return C.surround_level(ab, self.bh, self.bw, self.ref)
        a, b = P.bicubic(ab.flatten(0, 1), self.bh, self.bw).chunk(2)
        return a + b * self.ref


def fine_invented(fo: torch.Tensor, fr: torch.Tensor) -> torch.Tensor:
    """Invented energy of the finest band per pixel (N, H, W), luma^2 >= 0, from the output's and reference's
    finest bands ``fo``, ``fr`` (``y - G_FINE_SIGMA * y``): the oracle's ``fine_channel(all_fine_stats(...))``."""
    h, w = fo.shape[-2:]
    feats = A.features(fr)
    fit = A.local_lsq(fo, feats, stride=FIT_STRIDE)
    r = A.residual(fo, feats, [c[..., 0] for c in fit.coef], FIT_STRIDE)
    del feats
    r2 = C.squared(r)
    u, ref = P.blur2d(r2, F.FINE_WINDOW), P.blur2d(C.squared(fr), F.FINE_WINDOW)
    neighbours = C.shift_pairs(r, F.PREDICT_OFFSETS)
    if neighbours is None:
        neighbours = [shift_pair(r, dy, dx) for dy, dx in F.PREDICT_OFFSETS]
    pred_fit = A.local_lsq(r, neighbours, stride=PRED_STRIDE)
    del neighbours
    pred = (pred_fit.explained / pred_fit.moment(4, 4).clamp_min(1e-30)).clamp(0.0, 1.0)
    pred = A.to_full(pred, h, w, F.WINDOW_SIGMA, PRED_STRIDE)
    surround = _Surround(ref)
    level = surround.level(torch.minimum(u, F.SURROUND_CLIP * surround.level(u)))
    if C.ok(u, ref, pred, level, r2):
        return C.fine_combine(u, ref, pred, level, P.blur2d(r2, F.MAP_SIGMA), F.ABS_FLOOR, F.FINE_TOLERANCE,
                              F.PERIODIC_MIN, F.SURROUND_FACTOR)
    pred = pred.clamp(0.0, 1.0)
    d = (u - F.ABS_FLOOR - F.FINE_TOLERANCE * ref).clamp_min(0.0)
    periodic = ((pred - F.PERIODIC_MIN) / (1.0 - F.PERIODIC_MIN)).clamp(0.0, 1.0)
    inv = torch.maximum((d - F.SURROUND_FACTOR * level).clamp_min(0.0), periodic * d)
    # placed where the pointwise residual lies: G_1(r^2) / G_2(r^2) (u is G_2(r^2))
    return inv.mul_(A.sharpen(r2, u))
