"""Set-level realism statistics on feature vectors: Frechet distance, KID, CMMD, CLIP score (their bootstrap
intervals: :mod:`qa.bootstrap`).

All functions take float arrays (n, d) of features and return Python floats.

- Frechet distance: ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^1/2). The trace of the square root is the
  sum of the square roots of the eigenvalues of S1 S2; they are computed as the eigenvalues of the symmetric
  PSD matrix F^T S2 F with S1 = F F^T (Cholesky, or S1^1/2 when S1 is singular): same spectrum, eigenvalues
  only, stable; negative round-off clipped at 0. The result is clipped at 0 (a distance).
- Covariances are unbiased (divide by n - 1), as numpy.cov / torchmetrics / torch-fidelity.
- KID: unbiased MMD^2 with the polynomial kernel (x.y / d + 1)^3 averaged over random subsets.
- CMMD (Jayasumana et al. 2024): MMD^2 (V-statistic, diagonals included) with the Gaussian RBF kernel
  exp(-||x - y||^2 / (2 sigma^2)), sigma = 10, times 1000, on L2-normalised CLIP embeddings.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from qa.metrics.base import MetricInputError


class SmallSampleWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is rank-deficient and FID is biased upwards."""


class GaussianStats:
    """Running sums for mean and covariance of d-dimensional features (float64).

    Memory O(d^2), flat in n: the raw rows are also kept while n <= d (at most d x d values, the size of the
    second-moment sum itself) because they give a low-rank factor of the covariance that makes the Frechet
    distance of small sets cheap; they are dropped as soon as n exceeds d.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.s1 = np.zeros(dim, np.float64)
        self.s2 = np.zeros((dim, dim), np.float64)
        self._rows: list[np.ndarray] | None = []

    def update(self, feats: np.ndarray) -> None:
        """Add features (k, d)."""
        f = np.asarray(feats, np.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise MetricInputError(f"features must be (k, {self.dim}), got {f.shape}")
        if not np.isfinite(f).all():
            raise MetricInputError("features contain NaN or Inf")
        self.n += f.shape[0]
        self.s1 += f.sum(0)
        self.s2 += f.T @ f
        if self._rows is not None:
            self._rows.append(f.copy())
            if self.n > self.dim:
                self._rows = None

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean (d,), unbiased covariance (d, d)); needs n >= 2."""
        if self.n < 2:
            raise MetricInputError(f"need at least 2 samples for a covariance, have {self.n}")
        mu = self.s1 / self.n
        cov = (self.s2 - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, cov

    def export(self) -> dict[str, object]:
        """The sums (and rows while kept) as plain arrays: picklable, for merging per-shard statistics."""
        rows = np.concatenate(self._rows) if self._rows else (np.empty((0, self.dim)) if self._rows == [] else None)
        return {"n": self.n, "s1": self.s1.copy(), "s2": self.s2.copy(), "rows": rows}

    def merge(self, state: dict[str, object]) -> None:
        """Add the statistics of another set (an :meth:`export`): the same sums as updating with its rows."""
        n = int(state["n"])  # type: ignore[call-overload]
        s1, s2 = np.asarray(state["s1"], np.float64), np.asarray(state["s2"], np.float64)
        if s1.shape != (self.dim,) or s2.shape != (self.dim, self.dim):
            raise MetricInputError(f"cannot merge statistics of dimension {s1.shape} into {self.dim}")
        self.n += n
        self.s1 += s1
        self.s2 += s2
        rows = state.get("rows")
        if self._rows is not None and rows is not None and self.n <= self.dim:
            self._rows.append(np.asarray(rows, np.float64))
        else:
            self._rows = None

    def low_rank_factor(self) -> np.ndarray | None:
        """F (d, n) with covariance = F F^T when the rows are still kept (n <= d), else None."""
        if self._rows is None or self.n < 2:
            return None
        x = np.concatenate(self._rows)
        return (x - x.mean(0)).T / np.sqrt(self.n - 1)


def psd_factor(s: np.ndarray) -> np.ndarray:
    """A factor F with S = F F^T: Cholesky when S is positive definite, else the symmetric square root S^1/2.

    Then eig(S1 S2) = eig(F^T S2 F), a symmetric PSD matrix whose eigenvalues need no eigenvectors. Linear
    algebra runs in torch (float64): scipy's LAPACK slows down several-fold once torch's thread pool exists.
    """
    import torch  # noqa: PLC0415

    t = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float64))
    chol, info = torch.linalg.cholesky_ex(t)
    if int(info) == 0:
        return chol.numpy()
    w, v = torch.linalg.eigh(t)  # rank-deficient (n <= d): symmetric square root instead
    return ((v * torch.sqrt(torch.clamp(w, min=0.0))) @ v.T).numpy()


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray, factor_s1: np.ndarray | None = None) -> float:
    """Tr((S1 S2)^1/2) = sum of sqrt of the eigenvalues of S1 S2, computed as those of F^T S2 F (S1 = F F^T).

    ``factor_s1`` may be any (d, k) factor, e.g. a low-rank one from :meth:`GaussianStats.low_rank_factor`.
    """
    import torch  # noqa: PLC0415

    f = torch.from_numpy(np.ascontiguousarray(psd_factor(s1) if factor_s1 is None else factor_s1, dtype=np.float64))
    m = f.T @ torch.from_numpy(np.ascontiguousarray(s2, dtype=np.float64)) @ f
    ev = torch.linalg.eigvalsh((m + m.T) / 2)
    return float(torch.sqrt(torch.clamp(ev, min=0.0)).sum())


def frechet_distance(
    mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray, factor_s1: np.ndarray | None = None
) -> float:
    """Frechet distance between Gaussians N(mu1, S1), N(mu2, S2); >= 0. ``factor_s1``: precomputed psd_factor(S1)."""
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    tr = float(np.trace(s1) + np.trace(s2)) - 2.0 * trace_sqrt_product(s1, s2, factor_s1)
    return max(float(diff @ diff) + tr, 0.0)


def warn_small_n(n: int, dim: int, what: str) -> None:
    """Warn (SmallSampleWarning) when n < dim."""
    if n < dim:
        warnings.warn(
            f"{what}: {n} samples for {dim}-d features: the covariance is rank-deficient and the value is biased "
            f"upwards; use at least {dim} images for comparable numbers",
            SmallSampleWarning,
            stacklevel=3,
        )


def _poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> float:
    m = x.shape[0]
    kxx = (x @ x.T * gamma + coef0) ** degree
    kyy = (y @ y.T * gamma + coef0) ** degree
    kxy = (x @ y.T * gamma + coef0) ** degree
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(
    x: np.ndarray,
    y: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, np.ndarray, int]:
    """Kernel Inception Distance: (mean over subsets, the per-subset values, the subset size used).

    ``subset_size`` larger than either set is reduced to the smaller set's size (reported in the third value).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    size = min(subset_size, x.shape[0], y.shape[0])
    if size < 2:
        raise MetricInputError(f"KID needs at least 2 samples per set, have {x.shape[0]} and {y.shape[0]}")
    g = 1.0 / x.shape[1] if gamma is None else gamma
    rng = np.random.RandomState(seed)
    vals = np.empty(subsets)
    for i in range(subsets):
        xs = x[rng.choice(x.shape[0], size, replace=False)]
        ys = y[rng.choice(y.shape[0], size, replace=False)]
        vals[i] = _poly_mmd2_unbiased(xs, ys, degree, g, coef0)
    return float(vals.mean()), vals, size


def kid_resample_statistic(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                           coef0: float = 1.0) -> Callable[[np.ndarray], float]:
    """The unbiased polynomial MMD^2 of ``x`` (held fixed) against ``y[idx]``, as a function of ``idx`` (a
    bootstrap resample of the rows of ``y``); the kernel matrices are computed once (memory 8 m^2 bytes).

    The unbiased estimator leaves out the pairs of an image with itself (k(a, a) is not a draw of k between two
    images); in a resample a repeated image is such a pair too, so its output-output term is the mean of k over
    the pairs of distinct images, each weighted by how often both were drawn. On ``arange(m)`` this is the
    estimator itself; a resample with a single distinct image has no such pair: NaN.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    g = 1.0 / x.shape[1] if gamma is None else gamma
    n, m = x.shape[0], y.shape[0]
    kxx = (x @ x.T * g + coef0) ** degree
    sxx = float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)))
    kyy = (y @ y.T * g + coef0) ** degree
    kxy_mean = ((x @ y.T * g + coef0) ** degree).mean(0)  # mean over the references, per output

    diag = np.diag(kyy).copy()

    def stat(idx: np.ndarray) -> float:
        c = np.bincount(idx, minlength=m).astype(np.float64)
        pairs = float(c.sum() ** 2 - (c * c).sum())
        if pairs <= 0:
            return math.nan
        syy = float((c @ kyy @ c - (c * c) @ diag) / pairs)
        return sxx + syy - 2.0 * float(c @ kxy_mean) / float(c.sum())

    return stat


def rbf_gram(x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """exp(-||x_i - y_j||^2 / (2 sigma^2)) as an (n, m) float64 matrix."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.exp(-np.clip(d2, 0.0, None) / (2.0 * sigma**2))


def cmmd(x: np.ndarray, y: np.ndarray, sigma: float = 10.0, scale: float = 1000.0) -> float:
    """CMMD between embedding sets x (n, d) and y (m, d) (already L2-normalised): scale * MMD^2 (V-statistic)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    return float(scale * (rbf_gram(x, x, sigma).mean() + rbf_gram(y, y, sigma).mean() - 2 * rbf_gram(x, y, sigma).mean()))


def clip_scores(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Per-pair CLIP score max(100 cos(image_i, text_i), 0), shape (n,)."""
    a = np.asarray(image_emb, np.float64)
    b = np.asarray(text_emb, np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.maximum(100.0 * cos, 0.0)
