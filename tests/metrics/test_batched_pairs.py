"""The SSIM family, PSNR and LPIPS batched over a scoring group's pairs (what runs on a GPU: ``prepare`` computes
every pair in one torch call per image size, ``compute`` serves it): the same values as a pair at a time, on
both tiers of the window filters, and the pairs ``prepare`` leaves to ``compute`` still get their answer or
their error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from qa.metrics import fidelity, perceptual
from qa.metrics.agreement import AgreementLPIPS, AgreementPSNR, AgreementSSIM
from qa.metrics.base import ImageSample, MetricInputError
from qa.metrics.batching import by_size
from qa.metrics.fidelity import MSSSIM, PSNR, SSIM, SSIMSkimage
from qa.metrics.functional import fidelity_torch as T
from qa.metrics.invented import dispatch
from qa.metrics.perceptual import LPIPSAlex
from qa.metrics.plain_baseline import BaselineLPIPSAlex, BaselinePSNR, BaselineSSIM
from qa.metrics.scoring import score_sample


def _photo(i: int, shape: tuple[int, int]) -> np.ndarray:
    from skimage import data

    img = [data.astronaut(), data.coffee(), data.chelsea()][i % 3]
    y, x = 13 * i, 17 * i
    return np.ascontiguousarray(img[y : y + shape[0], x : x + shape[1]], dtype=np.float32) / 255.0


def _decoded(ref: np.ndarray, seed: int) -> np.ndarray:
    """A decoder-like copy: blurred, noisy, rounded to 6 bits."""
    rng = np.random.default_rng(seed)
    out = ndimage.gaussian_filter(ref, (0.8 + 0.2 * seed, 0.8, 0)) + 0.02 * rng.standard_normal(ref.shape)
    return np.clip(np.round(out * 64) / 64, 0, 1).astype(np.float32)


def _samples() -> list[ImageSample]:
    """Five samples in two sizes, each with a baseline: pairs of one size batch together."""
    out = []
    for i, shape in enumerate([(200, 240), (200, 240), (200, 240), (184, 192), (184, 192)]):
        ref = _photo(i, shape)
        out.append(ImageSample(f"c{i}", _decoded(ref, i), reference=ref, baseline=_decoded(ref, i + 7), seed=0))
    return out


@pytest.fixture(autouse=True)
def _fresh_scope():  # noqa: ANN202
    T.SCOPE.clear()
    yield
    T.SCOPE.clear()


@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "torch-tier"])
@pytest.mark.parametrize("kind", ["psnr", "ssim", "ssim_skimage", "ms_ssim"])
def test_a_batch_gives_each_pairs_own_values(kind: str, kernels: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "USE_KERNELS", kernels)
    samples = _samples()
    pairs = [(s.output, s.reference) for s in samples]
    one = {"psnr": T.psnr_torch, "ssim_skimage": T.ssim_skimage_value, "ms_ssim": T.ms_ssim_planes,
           "ssim": lambda a, b: T.ssim_gray(a, b, want_map=True)}[kind]
    alone = [one(T.ImagePlanes(a), T.ImagePlanes(b)) for a, b in pairs]  # no scope: a pair at a time
    T.enter_scope(samples)
    T.prefill(kind, pairs, "cpu")
    assert len(T.SCOPE.ssim if kind == "ssim" else T.SCOPE.values) == len(pairs)
    for (a, b), want in zip(pairs, alone, strict=True):
        got = one(T.planes_of(a), T.planes_of(b))
        if kind == "ssim":
            assert got[0] == pytest.approx(want[0], abs=1e-12, rel=0)
            assert float((got[1] - want[1]).abs().max()) < 1e-6  # the map, float32
        else:
            assert got == pytest.approx(want, abs=1e-12, rel=1e-12)


def test_by_size_batches_one_size_a_call_within_the_pixel_cap() -> None:
    samples = _samples()
    groups = by_size([(s.output, s.reference) for s in samples], 2 * 200 * 240)
    assert [len(g) for g in groups] == [2, 1, 2]
    assert all(len({g[0].shape for g in group}) == 1 for group in groups)


def _always_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a GPU run does, here on the CPU: the metrics batch their pairs in ``prepare``."""
    for module in (fidelity, perceptual):
        monkeypatch.setattr(module, "batches_on", lambda device: True)


def _fail(*args: object, **kwargs: object) -> None:
    raise AssertionError("computed a pair at a time after prepare batched it")


FIDELITY = [PSNR, SSIM, SSIMSkimage, MSSSIM, BaselinePSNR, BaselineSSIM, AgreementPSNR, AgreementSSIM]


def test_the_metrics_serve_what_prepare_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every batched fidelity metric scores each sample from its batch (the per-pair paths are made to fail),
    with the values it gives a pair at a time; equal pixels, a pair too small for a window and a NaN output
    are left to ``compute``: 1 or +inf, not applicable, an error."""
    samples = _samples()
    ref = samples[0].reference
    assert ref is not None
    extra = [ImageSample("same", ref.copy(), reference=ref, baseline=ref.copy(), seed=0),
             ImageSample("nan", np.full_like(ref, np.nan), reference=ref, baseline=np.full_like(ref, np.nan), seed=0)]
    metrics = [cls() for cls in FIDELITY]
    want = {(m.name, s.case_id): score_sample(m, s, None) for m in metrics for s in samples + extra}
    T.SCOPE.clear()
    _always_batch(monkeypatch)
    group = samples + extra
    calls: list[tuple[str, int]] = []
    real_prefill = T.prefill
    monkeypatch.setattr(T, "prefill", lambda kind, pairs, device: (calls.append((kind, len(pairs))),
                                                                   real_prefill(kind, pairs, device))[1])
    for m in metrics:
        m.prepare(group)
    assert calls == [("psnr", 5), ("ssim", 5), ("ssim_skimage", 5), ("ms_ssim", 5), ("psnr", 5), ("ssim", 5),
                     ("psnr", 5), ("ssim", 5)]
    for name in ("_ssim_gray", "_ssim_skimage", "_ms_ssim", "_psnr"):
        monkeypatch.setattr(T, name, _fail)
    monkeypatch.setitem(T._BATCHED, "psnr", _fail)
    for m in metrics:
        for s in samples + extra:
            if s.case_id in ("same", "nan"):
                continue
            got = score_sample(m, s, None)
            w = want[(m.name, s.case_id)]
            assert (got.status, got.detail) == (w.status, w.detail), (m.name, s.case_id)
            assert got.value == pytest.approx(w.value, abs=1e-12, rel=1e-12), (m.name, s.case_id)
            if w.map is not None:
                assert got.map is not None and np.abs(got.map - w.map).max() < 1e-6
    for m in metrics:  # the pairs prepare left alone: answered without planes, or rejected
        same = score_sample(m, extra[0], None)
        assert same.status == "ok" and same.value in (1.0, float("inf")), m.name
        nan = score_sample(m, extra[1], None)
        assert nan.status == "error" and "NaN" in nan.detail, m.name
    with pytest.raises(MetricInputError):
        SSIM().compute(ImageSample("tiny", np.zeros((8, 8, 3), np.float32), reference=np.ones((8, 8, 3), np.float32)))


def test_a_cpu_does_not_batch_the_fidelity_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(T, "prefill", _fail)
    samples = _samples()
    for cls in FIDELITY:
        cls().prepare(samples)


@pytest.fixture(scope="module")
def lpips_paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    lpips = pytest.importorskip("lpips")
    from tests.metrics.test_lpips import _random_backbone

    backbone = tmp_path_factory.mktemp("lpips") / "alex.pth"
    _random_backbone("alex", backbone)
    return backbone, Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"


def test_lpips_serves_what_prepare_batched(lpips_paths: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    backbone, heads = lpips_paths
    samples = _samples()
    plain, base = LPIPSAlex(backbone, heads), BaselineLPIPSAlex(backbone, heads)
    agree = AgreementLPIPS()
    agree._lpips = LPIPSAlex(backbone, heads)
    metrics = [plain, base, agree]
    want = {(m.name, s.case_id): m.compute(s) for m in metrics for s in samples}
    _always_batch(monkeypatch)
    calls: list[int] = []
    for m in metrics:
        lp = m._lpips if isinstance(m, AgreementLPIPS) else m
        real = lp.compute_batch
        monkeypatch.setattr(lp, "compute_batch", lambda o, r, spatial=False, _real=real: (
            calls.append(len(o)), _real(o, r, spatial=spatial))[1])
        m.prepare(samples)
    assert calls == [3, 2] * 3  # one call per image size and metric
    for m in metrics:
        lp = m._lpips if isinstance(m, AgreementLPIPS) else m
        monkeypatch.setattr(lp, "compute_batch", _fail)
        for s in samples:
            got, w = m.compute(s), want[(m.name, s.case_id)]
            assert got.value == pytest.approx(w.value, abs=1e-5), (m.name, s.case_id)
            assert (got.map is None) == (w.map is None)
            if w.map is not None:
                assert got.map is not None and np.abs(got.map - w.map).max() < 1e-4
    # an array the scope did not see is computed alone, never served another's value
    with pytest.raises(AssertionError, match="a pair at a time"):
        plain.compute(ImageSample("unseen", samples[0].output.copy(), reference=samples[0].reference))
