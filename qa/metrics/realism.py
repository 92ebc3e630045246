"""FID and KID: InceptionV3 pool3 (2048-d) features of the outputs against those of the references.

Features go through the DuckDB feature cache when a store is given: reference features are computed once per
(weights sha256, preprocessing, image), so a new candidate against a seen reference set costs only its own
forward passes, and a rerun with nothing changed runs no forward pass. FID keeps running sums only (memory flat
in the number of images) plus a bounded uniform reservoir of candidate features for the bootstrap interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from qa.bootstrap import centred_bootstrap
from qa.metrics.base import ImageSample, MetricInputError, NotApplicable, SetMetric, SetValue
from qa.metrics.feature_cache import (
    CachedExtractor,
    FeatureCache,
    computation_tag,
    merge_seen_references,
    new_reference,
    pixels_sha256,
    to_uint8,
)
from qa.metrics.functional import realism as R
from qa.store.db import Store
from qa.weights import store as wstore

DIM = 2048


class InceptionExtractor:
    """Loads the FID InceptionV3 and maps lists of uint8 (H, W, 3) images to (N, 2048) float32 features."""

    name = "inception-fid-pool3"

    def __init__(self, weights_path: Path, resizer: str = "tf1-bilinear", device: str = "cpu",
                 batch_size: int = 32) -> None:
        self.device = torch.device(device)
        self.weights_path, self.resizer = Path(weights_path), resizer
        self._model: torch.nn.Module | None = None  # loaded on the first cache miss only
        self.sha256 = wstore.cached_sha256(self.weights_path)
        self.preprocessing = f"uint8-round;{resizer};299;(x-128)/128" + computation_tag(
            ("qa.metrics.realism", "qa.metrics.functional.inception"), self.device.type)
        self.batch_size = batch_size

    @property
    def model(self) -> torch.nn.Module:
        """The network (weights loaded, BatchNorm folded) on first use."""
        if self._model is None:
            from qa.metrics.functional.inception import FIDInceptionV3  # noqa: PLC0415

            self._model = FIDInceptionV3(self.resizer).load_weights(self.weights_path, self.device)
        return self._model

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        out = np.empty((len(images), DIM), np.float32)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(im.shape, []).append(i)
        for idx in by_shape.values():
            for k in range(0, len(idx), self.batch_size):
                part = idx[k:k + self.batch_size]
                x = torch.from_numpy(np.stack([images[i] for i in part])).permute(0, 3, 1, 2).to(self.device)
                out[part] = self.model(x).float().cpu().numpy()
        return out


class _InceptionSetMetric(SetMetric):
    """Shared plumbing: weights, cache, batching of updates, reference de-duplication."""

    weights = ("inception-fid",)
    needs = ("reference",)

    def __init__(self, weights_path: str | Path | None = None, device: str = "cpu", batch_size: int = 32,
                 store: Store | None = None, resizer: str = "tf1-bilinear", n_bootstrap: int = 50,
                 seed: int = 0) -> None:
        self.weights_path = Path(weights_path) if weights_path else None
        self.device, self.batch_size, self.store, self.resizer = device, batch_size, store, resizer
        self.n_bootstrap, self.seed = n_bootstrap, seed
        self._extractor: CachedExtractor | None = None
        self.reset()

    def unavailable_reason(self) -> str | None:
        """Why the metric cannot run (Inception weights absent) plus the fix command, or None."""
        if self.weights_path is not None:
            return None if self.weights_path.is_file() else (
                f"weights file {self.weights_path} not found; fix: {wstore.fix_command('inception-fid')}")
        return wstore.unavailable_reason(self.weights)

    def extractor(self) -> CachedExtractor:
        """The cached feature extractor (loads the weights on first use)."""
        if self._extractor is None:
            net = InceptionExtractor(self.weights_path or wstore.require("inception-fid"), self.resizer,
                                     self.device, self.batch_size)
            cache = FeatureCache(self.store, net.name, net.sha256, net.preprocessing) if self.store else None
            self._extractor = CachedExtractor(net, cache, dim=DIM)
        return self._extractor

    def reset(self) -> None:
        """Forget all samples."""
        self._queue: list[tuple[str, str, np.ndarray]] = []  # (role, sha, uint8)
        self._seen_refs: set[str] = set()
        self.n_candidates = 0
        self.n_references = 0
        self._reset_state()

    def _reset_state(self) -> None:
        raise NotImplementedError

    # -- merging per-shard states (the Ray engine: one metric per worker, merged in the driver) ------------------
    def export_state(self) -> dict[str, object]:
        """Everything added so far, picklable: the reference images' sha256s plus the subclass's statistics."""
        self._flush()
        return {"refs": sorted(self._seen_refs), "n_candidates": self.n_candidates,
                "n_references": self.n_references, "stats": self._export()}

    def merge_state(self, state: dict[str, object]) -> None:
        """Add another instance's :meth:`export_state` (same metric and settings); merge in shard order to get
        the local engine's result. A reference image in two states cannot be de-duplicated after the fact:
        MetricInputError (run such a set with the local engine)."""
        self._flush()
        merge_seen_references(self.name, self._seen_refs, state["refs"])  # type: ignore[arg-type]
        self.n_candidates += int(state["n_candidates"])  # type: ignore[call-overload]
        self.n_references += int(state["n_references"])  # type: ignore[call-overload]
        self._merge(state["stats"])  # type: ignore[arg-type]

    def _export(self) -> dict[str, object]:
        raise NotImplementedError

    def _merge(self, stats: dict[str, object]) -> None:
        raise NotImplementedError

    def _add(self, role: str, feats: np.ndarray) -> None:
        raise NotImplementedError

    def update(self, sample: ImageSample) -> None:
        """Queue the output (and its reference once per distinct image); runs a batch when the queue is full."""
        out = sample.output
        if not np.isfinite(out).all():
            raise MetricInputError(f"{self.name}: case {sample.case_id}: output contains NaN or Inf values")
        self._queue.append(("cand", pixels_sha256(out), to_uint8(out)))
        ref = new_reference(sample, self._seen_refs)
        if ref is not None:
            self._queue.append(("ref", *ref))
        if len(self._queue) >= self.batch_size:
            self._flush()

    def flush_features(self) -> None:
        """Compute the features of every queued image now (the engine: at the end of each shard)."""
        self._flush()

    def _flush(self) -> None:
        if not self._queue:
            return
        queue, self._queue = self._queue, []
        feats = self.extractor()([q[1] for q in queue], [q[2] for q in queue])
        if not np.isfinite(feats).all():
            raise MetricInputError(f"{self.name}: the Inception features of {len(queue)} queued image(s) contain "
                                   "NaN or Inf values")
        for role in ("cand", "ref"):
            rows = [i for i, q in enumerate(queue) if q[0] == role]
            if rows:
                self._add(role, feats[rows])
                if role == "cand":
                    self.n_candidates += len(rows)
                else:
                    self.n_references += len(rows)

    def _check_sizes(self) -> None:
        self._flush()
        if self.n_references < 2:
            raise NotApplicable(f"not applicable: {self.name} needs at least 2 reference images, "
                                f"have {self.n_references}")
        if self.n_candidates < 2:
            raise MetricInputError(f"{self.name}: needs at least 2 outputs, have {self.n_candidates}")


class FID(_InceptionSetMetric):
    """Frechet Inception Distance (pool3, 2048-d), outputs vs references; lower is better, >= 0.

    CI: bias-corrected percentile bootstrap over the outputs (the reference statistics are held fixed;
    :func:`qa.bootstrap.centred_bootstrap`: resampling repeats outputs, which shrinks the
    covariance and pulls the plain percentile interval below the value at small n), from a uniform reservoir of
    at most ``reservoir`` output features; when the reservoir is smaller than the set, half-widths are scaled by
    sqrt(reservoir / n) around the full-set value, and ``detail`` says so. With far fewer images than 2048 the
    value itself is biased upwards (SmallSampleWarning) and the interval, which describes resampling the outputs
    only, says nothing about that bias: such an interval is rough, not tight.
    """

    name = "fid"
    version = "2"  # 2: each distinct output counted once (a deterministic decoder's two seeds were 2n)
    higher_is_better = False
    value_range = (0.0, float("inf"))
    unit = ""
    description = "FID, InceptionV3 pool3 2048-d (TF 2015-12-05 weights), resizer named in detail; bootstrap CI"
    reservoir = 2048

    def _reset_state(self) -> None:
        self.cand = R.GaussianStats(DIM)
        self.ref = R.GaussianStats(DIM)
        self._res_buf = np.empty((self.reservoir, DIM), np.float32)  # preallocated: memory flat in n
        self._rng = np.random.default_rng(self.seed)

    def _add(self, role: str, feats: np.ndarray) -> None:
        if role == "ref":
            self.ref.update(feats)
            return
        start = self.cand.n
        self.cand.update(feats)
        for k, f in enumerate(feats):  # reservoir sampling (Algorithm R)
            seen = start + k
            if seen < self.reservoir:
                self._res_buf[seen] = f
            else:
                j = int(self._rng.integers(0, seen + 1))
                if j < self.reservoir:
                    self._res_buf[j] = f

    def _export(self) -> dict[str, object]:
        m = min(self.cand.n, self.reservoir)
        return {"cand": self.cand.export(), "ref": self.ref.export(), "reservoir": self._res_buf[:m].copy()}

    def _merge(self, stats: dict[str, object]) -> None:
        """Sums add exactly; the reservoirs combine into a uniform sample of the union (exact concatenation while
        the union fits, else a hypergeometric split drawn with the metric's seeded generator)."""
        n_a, res_b = self.cand.n, np.asarray(stats["reservoir"], np.float32)
        cand = stats["cand"]
        n_b = int(cand["n"])  # type: ignore[index]
        self.cand.merge(cand)  # type: ignore[arg-type]
        self.ref.merge(stats["ref"])  # type: ignore[arg-type]
        if n_a + n_b <= self.reservoir:
            self._res_buf[n_a:n_a + n_b] = res_b[:n_b]
            return
        m_a = min(n_a, self.reservoir)
        k = int(self._rng.hypergeometric(n_a, n_b, self.reservoir))  # how many of the sample come from A
        take_a = self._res_buf[:m_a][self._rng.choice(m_a, size=k, replace=False)]
        take_b = res_b[self._rng.choice(len(res_b), size=self.reservoir - k, replace=False)]
        self._res_buf[:] = np.concatenate([take_a, take_b])

    def compute(self) -> SetValue:
        """FID with bootstrap CI; warns (SmallSampleWarning) when a set has fewer images than 2048."""
        self._check_sizes()
        R.warn_small_n(min(self.cand.n, self.ref.n), DIM, "fid")
        mu_c, cov_c = self.cand.mean_cov()
        mu_r, cov_r = self.ref.mean_cov()
        # factor the covariance of lower rank (eig(S1 S2) = eig(S2 S1)); small sets give an n x n problem
        low_c, low_r = self.cand.low_rank_factor(), self.ref.low_rank_factor()
        if low_c is not None and (low_r is None or low_c.shape[1] < low_r.shape[1]):
            value = R.frechet_distance(mu_c, cov_c, mu_r, cov_r, factor_s1=low_c)
        else:
            value = R.frechet_distance(mu_r, cov_r, mu_c, cov_c,
                                       factor_s1=low_r if low_r is not None else R.psd_factor(cov_r))
        fac_r = low_r
        detail = f"resizer {self.resizer}; n_out {self.cand.n}, n_ref {self.ref.n}"
        lo = hi = float("nan")
        m = min(self.cand.n, self.reservoir)
        if self.n_bootstrap > 0 and m >= 2:
            res = self._res_buf[:m].astype(np.float64)

            def stat(idx: np.ndarray) -> float:
                s = R.GaussianStats(DIM)
                s.update(res[idx])
                mu, cov = s.mean_cov()
                low = s.low_rank_factor()
                if low is not None:
                    return R.frechet_distance(mu, cov, mu_r, cov_r, factor_s1=low)
                return R.frechet_distance(mu_r, cov_r, mu, cov, factor_s1=fac_r)

            if fac_r is None and m > DIM:
                fac_r = R.psd_factor(cov_r)

            center = value if m == self.cand.n else stat(np.arange(m))
            lo, hi = centred_bootstrap(m, stat, center, self.n_bootstrap, seed=self.seed)
            if m < self.cand.n:
                f = np.sqrt(m / self.cand.n)
                lo, hi = value - (center - lo) * f, value + (hi - center) * f
                detail += f"; CI from a {m}-image reservoir, scaled by sqrt({m}/{self.cand.n})"
            lo = max(lo, 0.0)
            detail += f"; bias-corrected percentile CI, {self.n_bootstrap} bootstrap resamples of the outputs"
        return SetValue(value, lo, hi, n=self.cand.n, detail=detail)


class KID(_InceptionSetMetric):
    """Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel), averaged over random subsets.

    ``subset_size`` above the number of images is reduced to it (said in ``detail``). ``ci_low``/``ci_high``:
    the bias-corrected percentile bootstrap over the outputs, the references held fixed, as FID and CMMD
    (:func:`qa.bootstrap.centred_bootstrap`): ``n_bootstrap`` resamples of at most
    ``subset_size`` outputs (a seeded uniform sample when there are more; half-widths then scaled by
    sqrt(sample / n) around the value) against at most ``subset_size`` references, the statistic the unbiased
    MMD^2 of the resampled outputs (a repeated output is a self-pair and left out, as the estimator leaves out
    k(a, a): :func:`qa.metrics.functional.realism.kid_resample_statistic`). Not the spread of the per-subset
    values: with both sets at most ``subset_size`` images every subset is the whole set and that spread is zero,
    an interval a gate would read as exact. NaN ends (no interval, ``detail`` says why) when ``n_bootstrap`` is
    0 or there are fewer than 3 outputs: with 2, every resample with two distinct images is the set itself.
    """

    name = "kid"
    version = "2"  # 2: each distinct output counted once (a deterministic decoder's two seeds were 2n)
    higher_is_better = False
    value_range = (float("-inf"), float("inf"))  # unbiased: can be slightly negative
    unit = ""
    description = "KID, InceptionV3 pool3, cubic polynomial kernel, unbiased MMD^2 over subsets"

    def __init__(self, subsets: int = 100, subset_size: int = 1000, weights_path: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 32, store: Store | None = None,
                 resizer: str = "tf1-bilinear", n_bootstrap: int = 50, seed: int = 0) -> None:
        # the parameters are named (not **kw): the engine gives ``store`` and ``device`` to the metrics whose
        # signature names them (qa.engine.plan.make_metrics), and KID's features went uncached and on the CPU
        self.subsets, self.subset_size = subsets, subset_size
        super().__init__(weights_path, device, batch_size, store, resizer, n_bootstrap, seed)

    def _reset_state(self) -> None:
        self.feats: dict[str, list[np.ndarray]] = {"cand": [], "ref": []}

    def _add(self, role: str, feats: np.ndarray) -> None:
        self.feats[role].append(feats)

    def _export(self) -> dict[str, object]:
        return {role: np.concatenate(f) if f else np.empty((0, DIM), np.float32) for role, f in self.feats.items()}

    def _merge(self, stats: dict[str, object]) -> None:
        for role in ("cand", "ref"):
            arr = np.asarray(stats[role])
            if len(arr):
                self.feats[role].append(arr)

    def compute(self) -> SetValue:
        """KID mean over subsets with a bootstrap interval over the outputs."""
        self._check_sizes()
        x = np.concatenate(self.feats["ref"])
        y = np.concatenate(self.feats["cand"])
        value, _, size = R.kid(x, y, self.subsets, self.subset_size, seed=self.seed)
        detail = f"resizer {self.resizer}; {self.subsets} subsets of {size}"
        if size < self.subset_size:
            detail += f" (subset_size {self.subset_size} reduced to the set size)"
        lo, hi, how = self._interval(x, y, value)
        return SetValue(value, lo, hi, n=y.shape[0], detail=f"{detail}; {how}")

    def _interval(self, x: np.ndarray, y: np.ndarray, value: float) -> tuple[float, float, str]:
        """(low, high, how) of the bootstrap interval described in the class docstring."""
        if self.n_bootstrap <= 0:
            return float("nan"), float("nan"), "no CI (n_bootstrap 0)"
        if len(y) < 3:
            return float("nan"), float("nan"), f"no CI: a bootstrap interval needs at least 3 outputs, have {len(y)}"
        rng = np.random.default_rng(self.seed)
        m = min(len(y), self.subset_size)
        xs = x if len(x) <= self.subset_size else x[np.sort(rng.choice(len(x), self.subset_size, replace=False))]
        ys = y if m == len(y) else y[np.sort(rng.choice(len(y), m, replace=False))]
        stat = R.kid_resample_statistic(xs, ys)
        center = stat(np.arange(m))
        lo, hi = centred_bootstrap(m, stat, center, self.n_bootstrap, seed=self.seed)
        f = float(np.sqrt(m / len(y)))
        how = f"bias-corrected percentile CI, {self.n_bootstrap} bootstrap resamples of the outputs"
        if m < len(y):
            how += f" (a {m}-image sample, scaled by sqrt({m}/{len(y)}))"
        return value - (center - lo) * f, value + (hi - center) * f, how
