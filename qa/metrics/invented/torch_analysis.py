"""The invented-detail analysis in torch float32, batched over images of one size, on any device.

Same model, constants and outputs as the float64 oracle :mod:`qa.metrics.invented.functional` (which stays only as the
reference the tests compare with). What differs is how it is computed:

- Gaussians are banded matrix products (:mod:`qa.metrics.invented.torch_ops`), float32.
- The sigma-4 window statistics (the 15 local moments of each band: the 4x4 normal matrix, the right-hand side
  and the output's band energy) are formed block by block and filtered on a coarse grid only, every
  :data:`WINDOW_STRIDE`-th pixel per axis (a sigma-4 Gaussian passes 3e-9 of the stride-2 grid's Nyquist
  frequency, so the samples lose nothing). The 4x4 systems are solved in closed form on that grid, the noise
  floor's percentile is taken over its samples, and each band's excess over the tolerance (a smooth window
  statistic) is brought back to full resolution by an interpolator fitted to the window's spectrum
  (:func:`qa.metrics.invented.torch_ops.upsample`) before the floor cuts it, pixel by pixel, as in the oracle. Lost detail
  is a weighted sum over the coarse grid equal to the sum of its interpolated field.

The per-band *method* lives in :func:`band_coarse` (what to measure in a window) and :func:`combine` (floors,
summaries); the machinery (bands, coarse windows, interpolation, batching) does not depend on it.

Images are (N, 3, H, W) float32 tensors in [0, 1] (sRGB values); luma is Rec. 601.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qa.metrics.invented import cpu_steps as C
from qa.metrics.invented import functional as F
from qa.metrics.invented import functional_codec as FC
from qa.metrics.invented import torch_codec as TC
from qa.metrics.invented import torch_fine as TF
from qa.metrics.invented import torch_ops as T
from qa.metrics.invented import torch_passes as P
from qa.metrics.invented.torch_map import region_map

#: feature order: reference band, its x and y derivatives, its Laplacian; then the output band
_RB, _GX, _GY, _LAP, _OB = range(5)
#: the local (windowed) means the fit needs: the 4x4 normal matrix (upper triangle; (0, 0) is also the
#: reference band energy), the right-hand side (feature x output band) and the output band energy
PAIRS: list[tuple[int, int]] = (
    [(i, j) for i in range(4) for j in range(i, 4)] + [(i, _OB) for i in range(4)] + [(_OB, _OB)]
)
_IDX = {p: n for n, p in enumerate(PAIRS)}
#: (5, 5) index into PAIRS of the pair (i, j), either order (for the compiled solver)
_PIDX = np.array([[_IDX[(min(i, j), max(i, j))] for j in range(5)] for i in range(5)], dtype=np.int64)
#: the window statistics are evaluated on every WINDOW_STRIDE-th pixel per axis (see the module docstring)
WINDOW_STRIDE = 2
#: coarse samples kept beyond each image edge, so that the interpolation back is exact up to the border
EXTRA = T.INTERP_HALF


@dataclass
class InventedBatch:
    """The analysis of N output/reference pairs (all tensors on the analysis device).

    ``invented_energy``: (N, H, W) invented band energy per pixel, luma^2 (``map`` is its square root, luma RMS
    amplitude). ``invented``/``lost``: (N,) float64 fractions in [0, 1]. ``out_energy``/``ref_energy``: (N,)
    summed energies of the three bands (luma^2). ``noise_floor``: (N, bands), the per-band floor (luma^2).
    ``fine_invented``: (N,) the finest band's share of ``invented`` (:mod:`qa.metrics.invented.torch_fine`).
    """

    invented_energy: torch.Tensor
    invented: torch.Tensor
    lost: torch.Tensor
    out_energy: torch.Tensor
    ref_energy: torch.Tensor
    noise_floor: torch.Tensor
    fine_invented: torch.Tensor

    @property
    def map(self) -> torch.Tensor:
        """(N, H, W) RMS amplitude of invented detail, luma units (0 = none): :func:`region_map`."""
        return region_map(self.invented_energy)

    def result(self, i: int) -> F.InventedResult:
        """Image ``i`` as the oracle's :class:`~qa.metrics.invented.functional.InventedResult` (numpy, on the CPU)."""
        inv = self.invented_energy[i].detach().cpu().numpy()
        return F.InventedResult(
            map=region_map(self.invented_energy[i : i + 1])[0].cpu().numpy(),
            invented=float(self.invented[i]),
            lost=float(self.lost[i]),
            invented_energy=inv,
            out_energy=float(self.out_energy[i]),
            ref_energy=float(self.ref_energy[i]),
            noise_floor=tuple(float(v) for v in self.noise_floor[i]),
            fine_invented=float(self.fine_invented[i]),
        )


def solve4(m: torch.Tensor, rhs: list[torch.Tensor], ridge: torch.Tensor) -> list[torch.Tensor]:
    """Coefficients c of (M + ridge I) c = rhs per pixel, M symmetric 4x4 given by ``m(i, j)`` entries.

    ``m``: (..., P, N) moments indexed through :data:`PAIRS`; ``rhs``: four (..., N); returns four (..., N).
    The system is scaled to unit diagonal before a closed-form Cholesky, which keeps float32 accurate when the
    features differ in scale.
    """
    def g(i: int, j: int) -> torch.Tensor:
        return m[..., _IDX[(min(i, j), max(i, j))], :]

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


def coarse_windows(feats: torch.Tensor | list[torch.Tensor], pairs: list[tuple[int, int]], sigma: float,
                   stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """Gaussian-window means (sigma px, scipy ``reflect``) of ``feats[i] * feats[j]`` for each pair, sampled
    every ``stride`` px per axis from ``-stride * EXTRA``: (P, N, h', w') with ``h' = ceil(H / stride) + 2 EXTRA
    + 1``. ``feats``: (F, N, H, W) float32. The full-resolution products are formed block by block and never
    exist all at once."""
    return P.window_products(list(feats), pairs, sigma, stride, EXTRA)


def to_full(coarse: torch.Tensor, h: int, w: int, sigma: float, stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """(N, h', w') samples made by :func:`coarse_windows` -> (N, H, W) full resolution (fitted interpolator)."""
    return P.upsample_w(P.upsample_h(coarse, h, stride, sigma, EXTRA), w, stride, sigma, EXTRA)


def full_sum(coarse: torch.Tensor, h: int, w: int, sigma: float, stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """(N,) float64 sum over the full-resolution pixels of the field :func:`to_full` would make from ``coarse``
    (N, h', w'), without making it."""
    wy = P.axis_weights(h, stride, float(sigma), EXTRA).to(coarse.device)
    wx = P.axis_weights(w, stride, float(sigma), EXTRA).to(coarse.device)
    return torch.einsum("nij,i,j->n", coarse.double(), wy, wx)


def inside(coarse: torch.Tensor, h: int, w: int, stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """The samples of an (N, h', w') coarse field that lie inside the image: (N, ceil(H/s), ceil(W/s))."""
    return coarse[:, EXTRA : EXTRA + -(-h // stride), EXTRA : EXTRA + -(-w // stride)]


def percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-image ``numpy.percentile(x[i], q)`` (linear interpolation) of (N, ...) float32: (N,) float64."""
    flat = x.reshape(x.shape[0], -1)
    return (C.percentile(flat, q) if C.ok(flat) else T.percentile(flat, q)).double()


@dataclass
class BandCoarse:
    """One band's window statistics on the coarse grid, each (N, h', w') luma^2: the output's and reference's
    band energies and the energy of the least-squares explanation (0 <= explained <= out)."""

    out: torch.Tensor
    ref: torch.Tensor
    explained: torch.Tensor
    #: the fit's four coefficient fields on the coarse grid, each (N, h', w')
    coef: list[torch.Tensor]

    @property
    def unexplained(self) -> torch.Tensor:
        """Output band energy the reference does not explain (>= 0)."""
        return self.out - self.explained


@dataclass
class LocalFit:
    """A local least-squares fit of a target on four features in a Gaussian window, on the coarse grid: the
    windowed moments ``mom`` (N, h', w', P, 1) (see :data:`PAIRS`; feature 4 is the target), the coefficients
    (four (N, h', w', 1)) and the explained energy (N, h', w') = coef . (window mean of features x target)."""

    mom: torch.Tensor
    coef: list[torch.Tensor]
    explained: torch.Tensor

    def moment(self, i: int, j: int) -> torch.Tensor:
        """Window mean of feature i x feature j (4 = the target), (N, h', w')."""
        return self.mom[..., _IDX[(min(i, j), max(i, j))], 0]


def local_lsq(target: torch.Tensor, feats: list[torch.Tensor], window: float = F.WINDOW_SIGMA,
              stride: int = WINDOW_STRIDE) -> LocalFit:
    """The oracle's per-pixel least squares of ``target`` ((N, H, W)) on four ``feats`` in a Gaussian window
    (sigma ``window`` px) with its ridge, on the coarse grid (:func:`coarse_windows`, :func:`solve4`)."""
    raw = coarse_windows([*feats, target], PAIRS, window, stride)  # (P, N, h', w'), a view of (h', P, N, w')
    mom = raw.unsqueeze(-1).permute(1, 2, 3, 0, 4)  # (N, h', w', P, 1)
    if C.fit_ok(raw):
        coef, explained = C.solve_fit(raw, _PIDX, F.RIDGE_REL, F.RIDGE_ABS)
        return LocalFit(mom, [ci[..., None] for ci in coef], explained)
    trace = mom[..., _IDX[(0, 0)], :] + mom[..., _IDX[(1, 1)], :] + mom[..., _IDX[(2, 2)], :] + mom[..., _IDX[(3, 3)], :]
    ridge = F.RIDGE_REL * trace / 4.0 + F.RIDGE_ABS
    rhs = [mom[..., _IDX[(i, _OB)], :] for i in range(4)]
    c = solve4(mom, rhs, ridge)
    explained = (c[0] * rhs[0] + c[1] * rhs[1] + c[2] * rhs[2] + c[3] * rhs[3])[..., 0]
    return LocalFit(mom, c, explained)


def features(rb: torch.Tensor) -> list[torch.Tensor]:
    """The oracle's four reference features of a band (N, H, W): the band, its x and y derivatives
    (``numpy.gradient``) and its Laplacian (``scipy.ndimage.laplace``, reflect)."""
    if C.ok(rb) and min(rb.shape[-2:]) >= 2:
        return [rb, *C.features(rb)]
    gy, gx = T.gradient(rb)
    return [rb, gx, gy, T.laplace(rb)]


def band_coarse(ob: torch.Tensor, rb: torch.Tensor, feats: list[torch.Tensor] | None = None) -> BandCoarse:
    """The oracle's ``band_stats`` for the output band ``ob`` and reference band ``rb`` ((N, H, W)), on the
    coarse grid: the local least-squares explanation of ``ob`` by ``rb``, its derivatives and Laplacian
    (``feats``: :func:`features` of ``rb`` when already made)."""
    fit = local_lsq(ob, features(rb) if feats is None else feats)
    out_e, ref_e = fit.moment(_OB, _OB), fit.moment(_RB, _RB)
    return BandCoarse(out=out_e, ref=ref_e, explained=torch.minimum(fit.explained.clamp_min(0.0), out_e),
                      coef=[c[..., 0] for c in fit.coef])


def residual(target: torch.Tensor, feats: list[torch.Tensor], coef: list[torch.Tensor],
             stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """The oracle's pointwise residual ``target - sum_i coef_i feat_i`` of a local fit, (N, H, W): the four
    coarse coefficient fields (N, h', w') interpolated to full resolution (:func:`to_full`) first."""
    h, w = target.shape[-2:]
    if C.ok(target, *feats, *coef) and C.interp_ok(stride, EXTRA):
        return C.residual(target, feats, coef, stride, F.WINDOW_SIGMA, EXTRA)
    c = to_full(torch.cat(coef), h, w, F.WINDOW_SIGMA, stride).chunk(4)
    return target - (c[0] * feats[0] + c[1] * feats[1] + c[2] * feats[2] + c[3] * feats[3])


def sharpen(r2: torch.Tensor, wide: torch.Tensor) -> torch.Tensor:
    """The oracle's map placement ``G_MAP_SIGMA * r^2 / wide`` (0 where ``wide`` is 0), ``wide`` = the
    residual energy r^2 in the window the invented energy was measured in; (N, H, W) >= 0."""
    return torch.where(wide > 0, P.blur2d(r2, F.MAP_SIGMA) / torch.where(wide > 0, wide, torch.ones_like(wide)),
                       torch.zeros_like(wide))


def place_excess(excess: torch.Tensor, floor: torch.Tensor, r: torch.Tensor, wide: torch.Tensor,
                 into: torch.Tensor | None) -> torch.Tensor:
    """A band's invented energy per pixel (N, H, W): the coarse ``excess`` (N, h', w') interpolated, less the
    ``floor`` (N,), clamped at 0 and placed by :func:`sharpen` of the residual ``r`` (N, H, W; squared here, in
    place) with ``wide`` (N, h', w') its coarse window energy; added into ``into`` when given."""
    h, w = r.shape[-2:]
    r2 = C.squared(r, in_place=True)
    if C.ok(excess, r2, wide) and C.interp_ok(WINDOW_STRIDE, EXTRA):
        return C.place(excess, floor, P.blur2d(r2, F.MAP_SIGMA), wide, WINDOW_STRIDE, F.WINDOW_SIGMA, EXTRA, into)
    band_inv = (to_full(excess, h, w, F.WINDOW_SIGMA) - floor.float()[:, None, None]).clamp_min(0.0)
    band_inv.mul_(sharpen(r2, to_full(wide, h, w, F.WINDOW_SIGMA)))
    return band_inv if into is None else into.add_(band_inv)


def analyse(outputs: torch.Tensor, references: torch.Tensor) -> InventedBatch:
    """Invented and lost detail of every output against its reference ((N, 3, H, W), same size, [0, 1])."""
    if outputs.shape != references.shape or outputs.ndim != 4 or outputs.shape[1] != 3:
        raise ValueError(f"analyse: outputs {tuple(outputs.shape)} and references {tuple(references.shape)} must "
                         "both be (N, 3, H, W)")
    if not C.on_kernels(outputs):
        return _analyse(outputs, references)
    with C.torch_serial():  # the compiled kernels do most of the work on the CPU: see cpu_kernels.torch_serial
        return _analyse(outputs, references)


def _analyse(outputs: torch.Tensor, references: torch.Tensor) -> InventedBatch:
    T.keep_freed_memory()
    n, _, h, w = outputs.shape
    ys = torch.empty((2 * n, h, w), dtype=torch.float32, device=outputs.device)  # outputs' luma, references'
    C.luma_into(outputs, ys[:n])
    C.luma_into(references, ys[n:])
    sigmas = sorted({F.FINE_SIGMA} | {s for b in F.BAND_SIGMAS for s in (b, 2.0 * b)})
    low = {s: P.blur2d(ys, s) for s in sigmas}
    inv: torch.Tensor | None = None
    lost = torch.zeros(n, dtype=torch.float64, device=ys.device)
    out_sum = torch.zeros_like(lost)
    ref_sum = torch.zeros_like(lost)
    floors = []
    for s in F.BAND_SIGMAS:
        bands, energy = C.band(low[s], low[2.0 * s])  # energy: (2N,) summed squares, outputs then references
        ob, rb = bands[:n], bands[n:]
        feats = features(rb)
        st = band_coarse(ob, rb, feats)
        unexpl_in = inside(st.unexplained, h, w)
        floor = (F.NOISE_FLOOR_FACTOR * percentile(unexpl_in, F.NOISE_FLOOR_PERCENTILE)).clamp_min(F.ABS_FLOOR)
        floors.append(floor)
        # the excess over the tolerance is smooth (a window statistic): interpolated, then cut at the floor,
        # placed where the fit's pointwise residual lies: G_1(r^2) / G_4(r^2), the window's one smooth (coarse)
        r = residual(ob, feats, st.coef)
        del feats
        inv = place_excess(st.unexplained - F.LOCAL_TOLERANCE * st.ref, floor,
                           r, coarse_windows([r], [(0, 0)], F.WINDOW_SIGMA)[0], inv)
        lost += full_sum((st.ref - st.explained).clamp_min(0.0), h, w, F.WINDOW_SIGMA)
        out_sum += energy[:n].to(out_sum.device)
        ref_sum += energy[n:].to(ref_sum.device)
    assert inv is not None  # BAND_SIGMAS is not empty
    finest = C.sub(ys, low[F.FINE_SIGMA])  # the finest band y - G_0.8(y), outputs then references
    fine = TF.fine_invented(finest[:n], finest[n:])
    # the codec cap scales every whole 8 x 8 block's total; the finest band keeps its share of it
    if C.ok(ys, inv, fine) and inv.is_contiguous() and fine.is_contiguous():
        C.codec_cap(ys[:n], ys[n:], inv, fine, FC.CODEC_BLOCK, FC.CODEC_SLACK, FC.CODEC_FACTOR)
        inv_full = inv
    else:
        scale = TC.block_scale(inv + fine, TC.codec_excess(ys[:n], ys[n:]))
        fine.mul_(scale)
        inv_full = inv.mul_(scale).add_(fine).contiguous()
    if C.ok(fine, inv_full):
        fine_sum, inv_sum = C.plane_sums(fine), C.plane_sums(inv_full)
    else:
        fine_sum = fine.sum(dim=(1, 2), dtype=torch.float64)
        inv_sum = inv_full.sum(dim=(1, 2), dtype=torch.float64)
    denom = torch.maximum(out_sum, ref_sum)
    zero = torch.zeros_like(denom)
    invented = torch.where(denom > 0, (inv_sum / denom.clamp_min(1e-300)).clamp_max(1.0), zero)
    lost_frac = torch.where(ref_sum > 0, (lost / ref_sum.clamp_min(1e-300)).clamp_max(1.0), zero)
    fine_share = torch.where(denom > 0, (fine_sum / denom.clamp_min(1e-300)).clamp_max(1.0), zero)
    return InventedBatch(inv_full, invented, lost_frac, out_sum, ref_sum, torch.stack(floors, 1), fine_share)


def analyse_identical(images: torch.Tensor) -> InventedBatch:
    """:func:`analyse` of pairs whose output and reference are the same pixels ((N, 3, H, W), [0, 1]): nothing
    is invented or lost, so no fit runs. The energies are the three bands' (as :func:`analyse` sums them) and
    the floors the absolute floor (:func:`analyse` on equal images: invented 0, lost about 1e-6 from the ridge,
    floors ``ABS_FLOOR``). Used for a decoder whose baseline is itself (output vs baseline)."""
    n, _, h, w = images.shape
    ys = T.luma(images.float())
    energy = torch.zeros(n, dtype=torch.float64, device=ys.device)
    for s in F.BAND_SIGMAS:
        energy += (P.blur2d(ys, s) - P.blur2d(ys, 2.0 * s)).square().sum(dim=(1, 2), dtype=torch.float64)
    zero = torch.zeros_like(energy)
    floors = torch.full((n, len(F.BAND_SIGMAS)), F.ABS_FLOOR, dtype=torch.float64, device=ys.device)
    return InventedBatch(torch.zeros_like(ys), zero, zero.clone(), energy, energy.clone(), floors, zero.clone())


def inside_shape(h: int, w: int, stride: int = WINDOW_STRIDE) -> tuple[int, int]:
    """Shape of the in-image part of a coarse field."""
    return -(-h // stride), -(-w // stride)


def distortion(outputs: torch.Tensor, references: torch.Tensor, sigma: float = F.DISTORTION_SIGMA) -> torch.Tensor:
    """(N,) float64 RMS RGB difference of the Gaussian low-passes (sigma px) of outputs and references, [0, 1]."""
    h, w = outputs.shape[-2:]
    e = T.INTERP_HALF
    coarse = P.blur_w(P.blur_h(outputs.float() - references.float(), sigma, 2, e), sigma, 2, e)
    low = P.upsample_w(P.upsample_h(coarse, h, 2, sigma, e), w, 2, sigma, e)
    return low.square().mean(dim=(1, 2, 3), dtype=torch.float64).sqrt()


def hf_energy(images: torch.Tensor, sigma: float = F.HF_SIGMA) -> torch.Tensor:
    """(N,) float64 mean squared high-pass luma ``mean((Y - G_sigma * Y)^2)``, luma^2 units."""
    y = T.luma(images.float())
    hp = y - P.blur2d(y, sigma)
    return hp.square().mean(dim=(1, 2), dtype=torch.float64)


def seed_std(outputs: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """(H, W) population std of luma over S seed outputs: an (S, 3, H, W) batch or a list of S (1, 3, H, W)
    images (no stacked copy); exactly 0 for identical outputs.

    Deviations from the first seed's luma (so equal outputs give exactly 0), their mean and the mean squared
    deviation from it, one seed at a time (a reduction over a short leading axis is slow in torch on the CPU)."""
    s = len(outputs)
    if s < 2:
        raise ValueError(f"seed variance needs at least 2 outputs, got {s}")
    T.keep_freed_memory()

    def y(i: int) -> torch.Tensor:
        img = outputs[i] if isinstance(outputs, list) else outputs[i : i + 1]
        return T.luma(img.float())[0]

    first = y(0)
    devs = [y(i) - first for i in range(1, s)]
    mean = torch.zeros_like(first)
    for d in devs:
        mean += d
    mean /= s
    var = mean.square()  # seed 0's deviation (0) minus the mean, squared
    for d in devs:
        var += (d - mean).square()
    return var.div_(s).sqrt_()
