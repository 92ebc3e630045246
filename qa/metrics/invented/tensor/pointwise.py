"""Pointwise and neighbourhood steps of the analysis in torch (any device): luma, band differences and
squares, plane sums, the band features (``numpy.gradient``, ``scipy.ndimage.laplace``), the finest band's
neighbour pairs and per-image percentiles. Fields are (B, H, W)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nn_functional

from qa.metrics.invented.coefficients import reflect_index


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of (N, 3, H, W) float32 images in [0, 1]: (N, H, W).

    Images stored channels-last (the (N, H, W, 3) arrays of the engine, permuted) are reduced by one matrix-vector
    product over their contiguous RGB triples (three times faster than three strided channel reads)."""
    hwc = rgb.permute(0, 2, 3, 1)
    if hwc.is_contiguous():
        w = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device)
        return torch.mv(hwc.reshape(-1, 3), w).view(hwc.shape[:3])
    return rgb[:, 0] * 0.299 + rgb[:, 1] * 0.587 + rgb[:, 2] * 0.114


def luma_into(rgb: torch.Tensor, out: torch.Tensor) -> None:
    """:func:`luma` of (N, 3, H, W) ``rgb`` (as float32) written into (N, H, W) ``out``."""
    out.copy_(luma(rgb.float()))


def sub(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - b``."""
    return a - b


def squared(x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """``x * x``, written over ``x`` when ``in_place``."""
    return x.square_() if in_place else x * x


def band(low: torch.Tensor, lower: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A band ``low - lower`` of (B, H, W) Gaussians and its energy per plane, (B,) float64 sums of squares."""
    out = low - lower
    return out, out.square().sum(dim=(1, 2), dtype=torch.float64)


def plane_sums(x: torch.Tensor) -> torch.Tensor:
    """(B,) float64 sums over the planes of ``x`` (B, H, W)."""
    return x.sum(dim=(1, 2), dtype=torch.float64)


def _pad_axis(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """``x`` extended along ``dim`` with scipy's ``reflect`` rule."""
    n = x.shape[dim]
    if before <= n and after <= n:  # one reflection: two flipped slices (a copy, cheaper than a gather)
        return torch.cat([x.narrow(dim, 0, before).flip(dim), x, x.narrow(dim, n - after, after).flip(dim)], dim)
    return x.index_select(dim, reflect_index(n, -before, n + after, x.device))


def gradient(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``numpy.gradient`` of (N, H, W) along H and W (central differences, one-sided at the edges): (gy, gx)."""
    out = []
    for dim in (1, 2):
        g = torch.empty_like(y)
        n = y.shape[dim]
        mid = (y.narrow(dim, 2, n - 2) - y.narrow(dim, 0, n - 2)) * 0.5
        g.narrow(dim, 1, n - 2).copy_(mid)
        g.narrow(dim, 0, 1).copy_(y.narrow(dim, 1, 1) - y.narrow(dim, 0, 1))
        g.narrow(dim, n - 1, 1).copy_(y.narrow(dim, n - 1, 1) - y.narrow(dim, n - 2, 1))
        out.append(g)
    return out[0], out[1]


def laplace(y: torch.Tensor) -> torch.Tensor:
    """``scipy.ndimage.laplace(mode="reflect")`` of (N, H, W): the 5-point Laplacian, edges reflected."""
    p = _pad_axis(_pad_axis(y, 1, 1, 1), 2, 1, 1)
    c = p[:, 1:-1, 1:-1]
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:] - 4.0 * c


def features(rb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gx, gy, laplacian) of a band (N, H, W): :func:`gradient` and :func:`laplace`."""
    gy, gx = gradient(rb)
    return gx, gy, laplace(rb)


def shift_pair(r: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``r(x + d) + r(x - d)`` for d = (dy, dx), |dy|, |dx| <= 2, borders mirrored as the oracle's
    ``shift`` (``numpy.pad(mode="reflect")``)."""
    h, w = r.shape[-2:]
    p = nn_functional.pad(r[:, None], (2, 2, 2, 2), mode="reflect")[:, 0]
    return p[:, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] + p[:, 2 - dy : 2 - dy + h, 2 - dx : 2 - dx + w]


def shift_pairs(r: torch.Tensor, offsets: tuple[tuple[int, int], ...]) -> list[torch.Tensor]:
    """:func:`shift_pair` of (N, H, W) ``r`` for each offset: K (N, H, W) tensors."""
    return [shift_pair(r, dy, dx) for dy, dx in offsets]


def percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row ``numpy.percentile(row, q)`` (linear interpolation) of an (N, M) tensor: (N,)."""
    m = x.shape[1]
    pos = q / 100.0 * (m - 1)
    lo = int(math.floor(pos))
    frac = pos - lo
    v_lo = torch.kthvalue(x, lo + 1, dim=1).values
    if frac == 0.0 or lo + 1 >= m:
        return v_lo
    # the (lo + 2)-th smallest: v_lo again if it occurs that often, else the smallest value above it
    # (two cheap passes instead of a second selection)
    above = torch.where(x > v_lo[:, None], x, torch.full_like(x, float("inf"))).amin(dim=1)
    v_hi = torch.where((x <= v_lo[:, None]).sum(dim=1) >= lo + 2, v_lo, above)
    return v_lo + frac * (v_hi - v_lo)
