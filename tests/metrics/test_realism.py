"""FID / KID against torch-fidelity and torchmetrics with the same seeded-random Inception weights; Frechet vs
scipy sqrtm; degenerate inputs; the feature cache (reference computed once, rerun runs no forward pass)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from qa.metrics.base import ImageSample, MetricInputError
from qa.metrics.feature_cache import pixels_sha256
from qa.metrics.functional import realism as R
from qa.metrics.functional.inception import FIDInceptionV3, random_state_dict
from qa.metrics.realism import FID, KID
from qa.store.db import Store

N = 6  # images per set (far below 2048: the SmallSampleWarning is expected and checked)


def _images(seed: int, n: int, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((n, size // 4, size // 4, 3))
    return np.repeat(np.repeat(base, 4, 1), 4, 2).astype(np.float32)  # blocky, so not pure noise


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("inc") / "random_inception.pth"
    # seeded random weights, BatchNorm statistics calibrated on random images (non-trivial BN folding,
    # well-scaled features, so FID values are O(1) rather than round-off)
    torch.save(random_state_dict(seed=0), path)
    ref, cand = _images(1, N), np.clip(_images(2, N) * 0.8 + 0.1, 0, 1)
    to_u8 = lambda a: torch.from_numpy(np.floor(a * 255 + 0.5).astype(np.uint8)).permute(0, 3, 1, 2)  # noqa: E731
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    tf = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    with torch.no_grad():
        tf_ref, tf_cand = tf(to_u8(ref))[0].double().numpy(), tf(to_u8(cand))[0].double().numpy()
    # one store for the module: later tests reuse cached features instead of re-running the network
    store = Store(tmp_path_factory.mktemp("db") / "qa.duckdb")
    return {"path": path, "ref": ref, "cand": cand, "tf_ref": tf_ref, "tf_cand": tf_cand, "to_u8": to_u8,
            "store": store}


def _run(metric, ref: np.ndarray, cand: np.ndarray):  # noqa: ANN001, ANN202
    for i in range(len(cand)):
        metric.update(ImageSample(f"c{i}", cand[i], ref[i]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", R.SmallSampleWarning)
        return metric.compute()


def test_fid_kid_equal_torch_fidelity_and_torchmetrics(setup: dict) -> None:
    """Features equal torch-fidelity's extractor; FID equals torchmetrics'; KID equals both peers.

    (FID computed by torch-fidelity itself is in the slow test below: its scipy sqrtm takes ~30 s.)
    """
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    fid = FID(weights_path=setup["path"], n_bootstrap=0, store=setup["store"])
    with pytest.warns(R.SmallSampleWarning, match="2048"):
        for i in range(N):
            fid.update(ImageSample(f"c{i}", setup["cand"][i], setup["ref"][i]))
        ours = fid.compute().value
    cache = fid.extractor().cache
    assert cache is not None
    # the extractor: same features as torch-fidelity's FeatureExtractorInceptionV3 with the same file
    got = cache.get([pixels_sha256(im) for im in setup["ref"]])
    ours_feats = np.stack([got[pixels_sha256(im)] for im in setup["ref"]])
    # float32 round-off (BN folded into convs, matrix-form resize): 1e-6 of the largest feature
    np.testing.assert_allclose(ours_feats, setup["tf_ref"], rtol=1e-4, atol=1e-6 * np.abs(setup["tf_ref"]).max())


    class Lookup(torch.nn.Module):  # torchmetrics' FID math on the very same torch-fidelity features
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            key = x.shape[0], int(x[0, 0, 0, 0])
            if key not in lookup:  # torchmetrics probes the module with a dummy batch for the feature size
                return torch.zeros(x.shape[0], 2048, dtype=torch.float64)
            return torch.from_numpy(lookup[key])

    lookup = {}
    u8r, u8c = setup["to_u8"](setup["ref"]), setup["to_u8"](setup["cand"])
    lookup[(N, int(u8r[0, 0, 0, 0]))] = setup["tf_ref"]
    lookup[(N, int(u8c[0, 0, 0, 0]))] = setup["tf_cand"]
    tm = FrechetInceptionDistance(feature=Lookup(), normalize=False)
    tm.update(u8r, real=True)
    tm.update(u8c, real=False)
    assert ours == pytest.approx(float(tm.compute()), rel=1e-3)

    kid = KID(weights_path=setup["path"], subsets=20, subset_size=4, store=setup["store"])
    kv = _run(kid, setup["ref"], setup["cand"])
    peer = kid_features_to_metric(torch.from_numpy(setup["tf_ref"]), torch.from_numpy(setup["tf_cand"]),
                                  kid_subsets=20, kid_subset_size=4, kid_degree=3, kid_gamma=None, kid_coef0=1,
                                  rng_seed=0, verbose=False)
    assert kv.value == pytest.approx(peer["kernel_inception_distance_mean"], rel=1e-3)
    tmk = KernelInceptionDistance(feature=Lookup(), subsets=20, subset_size=N, normalize=False)
    tmk.update(u8r, real=True)
    tmk.update(u8c, real=False)
    tm_mean, _ = tmk.compute()
    full = KID(weights_path=setup["path"], subsets=3, subset_size=N, store=setup["store"])
    assert _run(full, setup["ref"], setup["cand"]).value == pytest.approx(float(tm_mean), rel=1e-3)


@pytest.mark.slow
def test_fid_equals_torch_fidelity_sqrtm(setup: dict) -> None:
    """torch-fidelity's FID of its own features (scipy sqrtm on 2048 x 2048: ~30 s here, hence slow)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    fid = FID(weights_path=setup["path"], n_bootstrap=0, store=setup["store"])
    ours = _run(fid, setup["ref"], setup["cand"]).value
    t = torch.from_numpy
    st = fid_statistics_to_metric(fid_features_to_statistics(t(setup["tf_ref"])),
                                  fid_features_to_statistics(t(setup["tf_cand"])), verbose=False)
    assert ours == pytest.approx(st["frechet_inception_distance"], rel=1e-3)


def test_antialias_resizer_matches_torchmetrics_extractor(setup: dict) -> None:
    from torchmetrics.image.fid import NoTrainInceptionV3

    peer = NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(setup["path"]),
                              antialias=True)
    ours = FIDInceptionV3("bilinear-antialias").load_weights(setup["path"])
    x = setup["to_u8"](setup["ref"][:3])
    with torch.no_grad():
        expected = peer(x).numpy()
        np.testing.assert_allclose(ours(x).numpy(), expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_frechet_equals_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    d = 256
    a, b = rng.standard_normal((d, 3 * d)), rng.standard_normal((d, 3 * d)) * 0.7
    s1, s2 = a @ a.T / (3 * d), b @ b.T / (3 * d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    assert R.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_low_rank_factor_path_equals_full_path() -> None:
    rng = np.random.default_rng(2)
    d = 96
    a, b = R.GaussianStats(d), R.GaussianStats(d)
    a.update(rng.standard_normal((40, d)))  # n < d: singular covariance, rows kept
    b.update(rng.standard_normal((300, d)) * 1.2 + 0.1)  # n > d: rows dropped
    assert a.low_rank_factor() is not None and b.low_rank_factor() is None
    (m1, s1), (m2, s2) = a.mean_cov(), b.mean_cov()
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    assert R.frechet_distance(m1, s1, m2, s2, factor_s1=a.low_rank_factor()) == pytest.approx(expected, rel=1e-6)
    assert R.frechet_distance(m2, s2, m1, s1) == pytest.approx(expected, rel=1e-6)
    assert R.frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_fid_zero_never_negative() -> None:
    rng = np.random.default_rng(1)
    f = rng.standard_normal((50, 128))  # n < d: rank-deficient covariance
    s = R.GaussianStats(128)
    s.update(f)
    mu, cov = s.mean_cov()
    v = R.frechet_distance(mu, cov, mu, cov)
    assert 0.0 <= v < 1e-6 * np.trace(cov)


def test_small_n_warns_and_kid_subset_larger_than_n(setup: dict) -> None:
    with pytest.warns(R.SmallSampleWarning):
        R.warn_small_n(10, 2048, "fid")
    x, y = setup["tf_ref"], setup["tf_cand"]
    value, vals, size = R.kid(x, y, subsets=5, subset_size=1000)
    assert size == N and np.isfinite(value) and np.allclose(vals, vals[0])  # every subset is the whole set


def test_constant_images_and_nan_error(setup: dict) -> None:
    fid = FID(weights_path=setup["path"], n_bootstrap=0, store=setup["store"])
    const = np.full((4, 32, 32, 3), 0.5, np.float32)
    cache = fid.extractor().cache
    assert cache is not None
    uncached_refs = 4 - len(cache.get([pixels_sha256(r) for r in setup["ref"][:4]]))
    v = _run(fid, setup["ref"][:4], const)
    assert np.isfinite(v.value) and v.value >= 0
    assert fid.extractor().n_forward == 1 + uncached_refs  # the four identical outputs run once
    bad = const[0].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(MetricInputError, match="NaN"):
        FID(weights_path=setup["path"]).update(ImageSample("bad", bad, const[1]))


def test_fid_bootstrap_ci_brackets_value(setup: dict) -> None:
    fid = FID(weights_path=setup["path"], n_bootstrap=3, store=setup["store"])
    v = _run(fid, setup["ref"], setup["cand"])
    assert 0 <= v.ci_low <= v.ci_high and v.n == N and "bootstrap" in v.detail


def test_feature_cache_reference_once_rerun_no_forward(setup: dict, tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    ref, cand = setup["ref"][:2], setup["cand"][:2]
    ref_sha = [pixels_sha256(r) for r in ref]

    def run(c: np.ndarray) -> tuple[float, int]:  # KID: same extractor and cache as FID, cheaper to finish
        m = KID(weights_path=setup["path"], store=store, subsets=2, subset_size=2)
        for i in range(len(c)):
            m.update(ImageSample(f"c{i}", c[i], ref[i], reference_sha256=ref_sha[i]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", R.SmallSampleWarning)
            return m.compute().value, m.extractor().n_forward

    v1, n1 = run(cand)
    v2, n2 = run(np.clip(cand + 0.05, 0, 1))
    v3, n3 = run(cand)
    assert (n1, n2, n3) == (4, 2, 0)
    assert v3 == pytest.approx(v1, rel=1e-6) and v2 != v1
    # FID and KID share the extractor's cache entries: an FID over the same images runs no forward pass
    fid = FID(weights_path=setup["path"], store=store, n_bootstrap=0)
    for i in range(len(cand)):
        fid.update(ImageSample(f"c{i}", cand[i], ref[i], reference_sha256=ref_sha[i]))
    fid._flush()
    assert fid.extractor().n_forward == 0
    rows = store.query("select count(*), min(preprocessing) from features")
    assert rows[0][0] == 6 and "tf1-bilinear" in str(rows[0][1])


@pytest.mark.parametrize("kind", ["fid", "kid"])
def test_per_shard_states_merge_to_the_single_process_result(setup: dict, kind: str) -> None:
    """The Ray engine's protocol: metrics in two workers export their states, the driver merges them in shard
    order; the result equals one metric that saw every sample (FID sums exactly, KID's features in order)."""
    make = (lambda: FID(weights_path=setup["path"], n_bootstrap=20, store=setup["store"])) if kind == "fid" else \
        (lambda: KID(weights_path=setup["path"], subsets=5, subset_size=4, store=setup["store"]))
    ref, cand = setup["ref"], setup["cand"]
    whole = _run(make(), ref, cand)
    parts = [make(), make()]
    for i in range(len(cand)):
        parts[i * 2 // len(cand)].update(ImageSample(f"c{i}", cand[i], ref[i]))
    merged = make()
    for p in parts:
        import pickle

        merged.merge_state(pickle.loads(pickle.dumps(p.export_state())))  # states cross process boundaries
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", R.SmallSampleWarning)
        got = merged.compute()
    assert got.n == whole.n == len(cand)
    # features of batches of different sizes may differ in the last float32 bits; the merge itself is exact
    assert got.value == pytest.approx(whole.value, rel=1e-5, abs=1e-9)
    assert (got.ci_low, got.ci_high) == pytest.approx((whole.ci_low, whole.ci_high), rel=1e-5, abs=1e-9)
    # the same reference in two shards cannot be de-duplicated afterwards: an error, never a double count
    twice = make()
    twice.merge_state(parts[0].export_state())
    with pytest.raises(MetricInputError, match="two shards"):
        twice.merge_state(parts[0].export_state())


def test_fid_reservoirs_merge_into_a_uniform_sample_of_the_union() -> None:
    fid = FID(weights_path="unused", n_bootstrap=0)
    fid.reservoir = 8
    fid._reset_state()
    a, b = FID(weights_path="unused"), FID(weights_path="unused")
    for m, start, n in ((a, 0, 6), (b, 100, 10)):
        m.reservoir = 8
        m._reset_state()
        feats = np.zeros((n, 2048), np.float32)
        feats[:, 0] = np.arange(start, start + n)
        m._add("cand", feats)
    fid.merge_state(a.export_state())
    assert sorted(fid._res_buf[:6, 0]) == list(range(6))  # fits: exact concatenation
    fid.merge_state(b.export_state())
    assert fid.cand.n == 16
    picked = fid._res_buf[:, 0]
    assert len(set(picked)) == 8 and set(picked) <= set(range(6)) | set(range(100, 110))
