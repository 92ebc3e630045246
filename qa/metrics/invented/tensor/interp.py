"""Interpolation in torch (any device): decimated window statistics back to full resolution and the bicubic
upsampling of the surround's block grid, each as a banded matrix (:mod:`qa.metrics.invented.coefficients`)
applied block by block along H or W of the (..., H, W) layout."""

from __future__ import annotations

import torch

from qa.metrics.invented.coefficients import cubic_matrix, interp_matrix

#: full-resolution outputs per block of an interpolation (:func:`apply_h`, :func:`apply_w`)
INTERP_BLOCK = 32

_SPANS: dict[tuple[int, ...], list[tuple[int, int, int, int]]] = {}


def _spans(u: torch.Tensor, key: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """(first output, outputs, first input, end input) of the row blocks of a banded (n, m) matrix ``u``."""
    if key not in _SPANS:
        out = []
        host = u.cpu()
        for i0 in range(0, host.shape[0], INTERP_BLOCK):
            nb = min(INTERP_BLOCK, host.shape[0] - i0)
            nz = torch.nonzero(host[i0 : i0 + nb].abs().sum(0) > 0)
            out.append((i0, nb, int(nz[0]), int(nz[-1]) + 1))
        _SPANS[key] = out
    return _SPANS[key]


def apply_h(c: torch.Tensor, u: torch.Tensor, key: tuple[int, ...]) -> torch.Tensor:
    """``u @ c`` along H for a banded (n, m) matrix ``u`` and (..., m, W) ``c``: (..., n, W), block by block
    (``key`` names ``u``'s band structure for the cache of its blocks)."""
    out = torch.empty((*c.shape[:-2], u.shape[0], c.shape[-1]), dtype=c.dtype, device=c.device)
    for i0, nb, s0, s1 in _spans(u, key):
        torch.matmul(u[i0 : i0 + nb, s0:s1], c[..., s0:s1, :], out=out[..., i0 : i0 + nb, :])
    return out


def apply_w(c: torch.Tensor, u: torch.Tensor, key: tuple[int, ...]) -> torch.Tensor:
    """``c @ u.T`` along W for a banded (n, m) ``u`` and (..., H, m) ``c``: (..., H, n), as :func:`apply_h`."""
    lead = c.shape[:-1]
    rows = c.reshape(-1, c.shape[-1])
    out = torch.empty((rows.shape[0], u.shape[0]), dtype=c.dtype, device=c.device)
    for i0, nb, s0, s1 in _spans(u, key):
        # addmm_ with beta=0 writes the strided column block in place (mm's out= goes through a copy)
        out[:, i0 : i0 + nb].addmm_(rows[:, s0:s1], u[i0 : i0 + nb, s0:s1].T, beta=0)
    return out.reshape(*lead, u.shape[0])


def upsample_h(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., m, W) decimated samples along H -> (..., n, W) full resolution (interpolator fitted to a Gaussian
    of ``sigma`` px, :func:`qa.metrics.invented.coefficients.interp_matrix`)."""
    u = interp_matrix(n, stride, float(sigma), extra, str(c.device))
    return apply_h(c, u, (0, n, stride, int(sigma * 1000), extra))


def upsample_w(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., H, m) decimated samples along W -> (..., H, n), as :func:`upsample_h`."""
    u = interp_matrix(n, stride, float(sigma), extra, str(c.device))
    return apply_w(c, u, (0, n, stride, int(sigma * 1000), extra))


def to_full(coarse: torch.Tensor, h: int, w: int, sigma: float, stride: int, extra: int) -> torch.Tensor:
    """(..., h', w') decimated samples -> (..., H, W): :func:`upsample_h`, then :func:`upsample_w`."""
    return upsample_w(upsample_h(coarse, h, stride, sigma, extra), w, stride, sigma, extra)


def bicubic(c: torch.Tensor, fh: int, fw: int) -> torch.Tensor:
    """``interpolate(c[:, None], scale_factor=(fh, fw), mode="bicubic", align_corners=False)[:, 0]`` of (..., h,
    w) as two banded matrix passes (the same numbers up to float32 rounding, several times faster on the CPU)."""
    h, w = c.shape[-2:]
    if fh > 1:
        c = apply_h(c, cubic_matrix(h, fh, str(c.device)), (1, h, fh))
    if fw > 1:
        c = apply_w(c, cubic_matrix(w, fw, str(c.device)), (1, w, fw))
    return c
