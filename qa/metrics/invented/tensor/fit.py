"""The local least-squares fit's steps in torch (any device): the closed-form ridge solve of the 4 x 4
systems on the coarse grid, the pointwise residual and a band's placed excess (coarse fields interpolated to
full resolution first)."""

from __future__ import annotations

import numpy as np
import torch

from qa.metrics.invented.tensor.interp import to_full


def solve4(m: torch.Tensor, idx: np.ndarray, rhs: list[torch.Tensor], ridge: torch.Tensor) -> list[torch.Tensor]:
    """Coefficients c of (M + ridge I) c = rhs per pixel, M symmetric 4x4 given by ``m(i, j)`` entries.

    ``m``: (..., P, N) moments, entry (i, j) at ``idx[i, j]``; ``rhs``: four (..., N); returns four (..., N).
    The system is scaled to unit diagonal before a closed-form Cholesky, which keeps float32 accurate when the
    features differ in scale.
    """
    def g(i: int, j: int) -> torch.Tensor:
        return m[..., int(idx[i, j]), :]

    d = [torch.rsqrt(g(i, i) + ridge) for i in range(4)]
    low: dict[tuple[int, int], torch.Tensor] = {}
    diag: list[torch.Tensor] = []
    for i in range(4):  # Cholesky of the unit-diagonal matrix
        for j in range(i):
            acc = g(i, j) * d[i] * d[j]
            for k in range(j):
                acc = acc - low[(i, k)] * low[(j, k)]
            low[(i, j)] = acc / diag[j]
        s = torch.ones_like(ridge)
        for k in range(i):
            s = s - low[(i, k)] ** 2
        diag.append(s.clamp_min(1e-12).sqrt())
    z: list[torch.Tensor] = []
    for i in range(4):  # L z = D rhs
        acc = rhs[i] * d[i]
        for k in range(i):
            acc = acc - low[(i, k)] * z[k]
        z.append(acc / diag[i])
    c: list[torch.Tensor] = [z[0]] * 4
    for i in (3, 2, 1, 0):  # L^T c' = z, c = D c'
        acc = z[i]
        for k in range(i + 1, 4):
            acc = acc - low[(k, i)] * c[k]
        c[i] = acc / diag[i]
    return [c[i] * d[i] for i in range(4)]


def solve_fit(raw: torch.Tensor, pidx: np.ndarray, ridge_rel: float, ridge_abs: float
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The four coefficient fields (each (N, h', w')) and the explained energy (N, h', w') of the local ridge
    fits whose window moments are ``raw`` ((P, N, h', w'); ``pidx`` (5, 5): index into P of feature pair (i, j),
    4 = the target): ridge = ``ridge_rel`` x trace / 4 + ``ridge_abs``, :func:`solve4`."""
    mom = raw.unsqueeze(-1).permute(1, 2, 3, 0, 4)  # (N, h', w', P, 1)
    trace = mom[..., int(pidx[0, 0]), :] + mom[..., int(pidx[1, 1]), :] + mom[..., int(pidx[2, 2]), :] \
        + mom[..., int(pidx[3, 3]), :]
    ridge = ridge_rel * trace / 4.0 + ridge_abs
    rhs = [mom[..., int(pidx[i, 4]), :] for i in range(4)]
    c = solve4(mom, pidx, rhs, ridge)
    explained = (c[0] * rhs[0] + c[1] * rhs[1] + c[2] * rhs[2] + c[3] * rhs[3])[..., 0]
    return [ci[..., 0] for ci in c], explained


def residual(target: torch.Tensor, feats: list[torch.Tensor], coef: list[torch.Tensor], stride: int,
             sigma: float, extra: int) -> torch.Tensor:
    """``target - sum_i c_i feats[i]`` ((N, H, W)) with the four coarse coefficient fields ``coef`` ((N, h', w')
    samples every ``stride`` px from ``-stride extra``) interpolated to full resolution first."""
    h, w = target.shape[-2:]
    c = to_full(torch.cat(coef), h, w, sigma, stride, extra).chunk(4)
    return target - (c[0] * feats[0] + c[1] * feats[1] + c[2] * feats[2] + c[3] * feats[3])


def place(excess: torch.Tensor, floor: torch.Tensor, near: torch.Tensor, wide: torch.Tensor, stride: int,
          sigma: float, extra: int, into: torch.Tensor | None) -> torch.Tensor:
    """``max(0, excess - floor) * near / wide`` (0 where ``wide`` is 0) per pixel, (N, H, W): ``excess`` and
    ``wide`` coarse fields (N, h', w') interpolated to full resolution, ``floor`` (N,), ``near`` (N, H, W); added
    into ``into`` when given (and returned)."""
    h, w = near.shape[-2:]
    band_inv = (to_full(excess, h, w, sigma, stride, extra) - floor.float()[:, None, None]).clamp_min(0.0)
    wide = to_full(wide, h, w, sigma, stride, extra)
    band_inv.mul_(torch.where(wide > 0, near / torch.where(wide > 0, wide, torch.ones_like(wide)),
                              torch.zeros_like(wide)))
    return band_inv if into is None else into.add_(band_inv)
