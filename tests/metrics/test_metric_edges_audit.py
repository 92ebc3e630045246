"""Edge cases from the metric audit (s42): LPIPS on images too small for its backbone (findings 2), CLIP score with
some or all outputs uncaptioned, blank captions (3, 10), and CMMD naming its backbone (4).

References: the LPIPS minimum sides are found by running the bare networks (and the ``lpips`` package, where it
is installed) on every side; the partial CLIP score is checked against the same metric fed only the captioned
outputs, through the local engine's and the Ray driver's result paths.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from qa.engine.ray_engine import _set_rows
from qa.engine.ray_worker import ShardResult, export_states
from qa.engine.run import RunEngine
from qa.metrics import perceptual
from qa.metrics.agreement import AgreementLPIPS
from qa.metrics.base import ImageSample, NotApplicable, SetMetric
from qa.metrics.clip import CMMD, CLIPScore
from qa.metrics.declarations import declaration
from qa.metrics.functional.lpips import LPIPSNet
from qa.metrics.perceptual import LPIPSVGG, LPIPSAlex
from qa.metrics.plain_baseline import BaselineLPIPSAlex
from qa.metrics.scoring import score_sample
from tests.metrics.clip_helpers import random_images, tiny_clip

# -- LPIPS: images too small for the backbone -----------------------------------------------------------------


def _runs(net: LPIPSNet, h: int, w: int) -> bool:
    x = torch.rand(1, 3, h, w)
    try:
        with torch.no_grad():
            net(x, x.flip(-1))
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("name", ["alex", "vgg"])
def test_min_side_is_the_smallest_side_the_network_takes(name: str) -> None:
    """The declared minimum runs on each axis (the other side large) and one pixel less fails; the ``lpips``
    package, where installed, fails the same way below it."""
    side = perceptual.LPIPS_MIN_SIDE[name]
    net = LPIPSNet(name)
    assert _runs(net, side, side) and _runs(net, side, 64) and _runs(net, 64, side)
    assert not _runs(net, side - 1, 64) and not _runs(net, 64, side - 1)
    lpips = pytest.importorskip("lpips")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = lpips.LPIPS(pretrained=False, net=name, version="0.1", pnet_rand=True, verbose=False).eval()
    x = torch.rand(1, 3, side - 1, 64) * 2 - 1
    with torch.no_grad(), pytest.raises(RuntimeError):
        peer(x, x.flip(-1))
    x = torch.rand(1, 3, side, 64) * 2 - 1
    with torch.no_grad():
        assert torch.isfinite(peer(x, x.flip(-1))).all()


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    lpips = pytest.importorskip("lpips")
    from tests.metrics.test_lpips import _random_backbone

    heads = Path(lpips.__file__).parent / "weights" / "v0.1"
    out = {}
    for net in ("alex", "vgg"):
        backbone = tmp_path_factory.mktemp("lpips") / f"{net}.pth"
        _random_backbone(net, backbone)
        out[net] = (backbone, heads / f"{net}.pth")
    return out


def _alex_family(files: dict[str, tuple[Path, Path]]) -> list[Any]:
    backbone, heads = files["alex"]
    agree = AgreementLPIPS()
    agree._lpips = LPIPSAlex(backbone, heads)
    return [LPIPSAlex(backbone, heads), BaselineLPIPSAlex(backbone, heads), agree]


def _sample(case: str, h: int, w: int, seed: int = 0) -> ImageSample:
    rng = np.random.default_rng(seed)
    ref = rng.random((h, w, 3)).astype(np.float32)
    out = np.clip(ref + 0.1 * rng.standard_normal(ref.shape), 0, 1).astype(np.float32)
    base = np.clip(ref + 0.05 * rng.standard_normal(ref.shape), 0, 1).astype(np.float32)
    return ImageSample(case, out, reference=ref, baseline=base, seed=0)


@pytest.mark.parametrize("shape", [(16, 16), (24, 30), (30, 200), (200, 30)])
def test_alexnet_lpips_on_a_small_image_is_not_applicable(lpips_files: dict[str, tuple[Path, Path]],
                                                          shape: tuple[int, int]) -> None:
    """16-30 px (the loader takes >= 16): missing with the reason and the size, not a torch error row."""
    for m in _alex_family(lpips_files):
        got = score_sample(m, _sample("small", *shape), None)
        assert got.status == "missing", (m.name, got)
        assert got.detail.startswith(f"not applicable: {m.name} needs both sides >= 31 px"), got.detail
        assert str(shape) in got.detail


def test_lpips_at_the_minimum_side_is_scored(lpips_files: dict[str, tuple[Path, Path]]) -> None:
    for m in _alex_family(lpips_files):
        got = score_sample(m, _sample("edge", 31, 33), None)
        assert got.status == "ok" and got.value is not None and got.value > 0, (m.name, got)
    vgg = LPIPSVGG(*lpips_files["vgg"])
    assert score_sample(vgg, _sample("vgg16", 16, 16), None).status == "ok"
    with pytest.raises(NotApplicable, match=r"lpips_vgg needs both sides >= 16 px"):
        vgg.compute(_sample("vgg15", 15, 40))  # below the loader's minimum: the direct API still says why


def test_a_batch_with_one_small_image_scores_the_rest(lpips_files: dict[str, tuple[Path, Path]],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The batched path (a GPU's ``prepare``) leaves the small pair out instead of failing the whole call; the
    large pairs are served from the batch with the values a pair at a time gives."""
    samples = [_sample("big0", 40, 48, 1), _sample("tiny", 16, 16, 2), _sample("big1", 40, 48, 3)]
    metrics = _alex_family(lpips_files)
    want = {(m.name, s.case_id): score_sample(m, s, None) for m in metrics for s in samples}
    monkeypatch.setattr(perceptual, "batches_on", lambda device: True)
    for m in metrics:
        m.prepare(samples)  # the current code raised torch's "Output size is too small" here
        lp = m._lpips if isinstance(m, AgreementLPIPS) else m

        def _fail(*args: object, **kwargs: object) -> None:
            raise AssertionError("a pair prepare batched was computed again")

        monkeypatch.setattr(lp, "compute_batch", _fail)
        for s in samples:
            got, w = score_sample(m, s, None), want[(m.name, s.case_id)]
            assert (got.status, got.detail) == (w.status, w.detail), (m.name, s.case_id)
            if s.case_id == "tiny":
                assert got.status == "missing" and "needs both sides >= 31 px" in got.detail
            else:
                assert got.value == pytest.approx(w.value, abs=1e-5), (m.name, s.case_id)


# -- CLIP score: uncaptioned and blank captions ------------------------------------------------------------------

CAPTIONS = ["a red bus", "two cats", "", "a lake", "   ", "a bowl of soup"]


@pytest.fixture(scope="module")
def clip_model() -> torch.nn.Module:
    return tiny_clip(0)


def _clip(model: torch.nn.Module) -> CLIPScore:
    return CLIPScore(model=model, model_sha256="random-test-model", n_bootstrap=30)


def _samples(captions: list[str]) -> list[ImageSample]:
    imgs = random_images(5, len(captions))
    return [ImageSample(f"case{i}", imgs[i], caption=c) for i, c in enumerate(captions)]


def _feed(m: SetMetric, samples: list[ImageSample]) -> None:
    """What the engine's shard runner does (``qa/engine/shard.py``): an update that raises is recorded."""
    for s in samples:
        try:
            m.update(s)
        except Exception as exc:  # noqa: BLE001 - as the engine
            m.record_update_error(f"{s.case_id}: {exc}")


def test_uncaptioned_outputs_are_counted_not_scored(clip_model: torch.nn.Module) -> None:
    """The value over the captioned outputs survives (it was an error row for the whole run); a blank caption
    counts as none; the detail says how many were left out and n is the number scored."""
    samples = _samples(CAPTIONS)
    part = _clip(clip_model)
    _feed(part, samples)
    row = RunEngine.set_metric_result("run", part, resumed=False)
    only = _clip(clip_model)
    _feed(only, [s for s in samples if s.caption.strip()])
    ref = only.compute()
    assert row.status == "ok", row
    assert row.n == ref.n == 4
    assert row.value == pytest.approx(ref.value, rel=1e-6)
    assert "2 of 6 outputs had no caption and were not scored (n = 4 scored)" in row.detail
    assert "no caption" not in ref.detail


def test_a_blank_caption_is_no_caption(clip_model: torch.nn.Module) -> None:
    samples = _samples(["a red bus", " \t "])
    m = _clip(clip_model)
    _feed(m, samples)
    got = m.compute()
    alone = _clip(clip_model)
    _feed(alone, samples[:1])
    assert got.n == 1 and got.value == pytest.approx(alone.compute().value, rel=1e-6)


def test_no_caption_at_all_is_missing_not_a_value(clip_model: torch.nn.Module) -> None:
    m = _clip(clip_model)
    _feed(m, _samples(["", "  ", ""]))
    row = RunEngine.set_metric_result("run", m, resumed=False)
    assert (row.status, row.value) == ("missing", None)
    assert row.detail.startswith("not applicable") and "none of the 3 outputs had one" in row.detail


def test_the_ray_driver_merges_the_count_as_the_local_engine_counts(clip_model: torch.nn.Module) -> None:
    """Shards export their states (uncaptioned outputs in both), the driver merges them in shard order
    (``qa.engine.ray_engine._set_rows``): the same row as one process fed every output."""
    samples = _samples(CAPTIONS)
    whole = _clip(clip_model)
    _feed(whole, samples)
    local = RunEngine.set_metric_result("run", whole, resumed=False)
    results = {}
    for index, part in enumerate((samples[:3], samples[3:])):
        shard = _clip(clip_model)
        _feed(shard, part)
        states, errors = export_states([shard])
        assert not errors
        results[index] = ShardResult(index, None, pickle.loads(pickle.dumps(states)), errors)  # type: ignore[arg-type]
    ray = _set_rows(RunEngine, "run", [_clip(clip_model)], results, [0, 1], resumed=False)["clip_score"]  # type: ignore[arg-type]
    assert (ray.status, ray.n, ray.detail) == (local.status, local.n, local.detail) == (
        "ok", 4, "open_clip ViT-B-32; 2 of 6 outputs had no caption and were not scored (n = 4 scored)")
    assert ray.value == pytest.approx(local.value, rel=1e-5)


# -- CMMD: its backbone said where it is described -----------------------------------------------------------------


def test_cmmd_names_its_backbone_and_the_papers() -> None:
    text = declaration("cmmd").description
    assert "ViT-B/32" in text and "ViT-L/14@336" in text and "model_name='ViT-L-14-336'" in text
    assert "ViT-B/32" in declaration("clip_score").description
    paper = CMMD(model_name="ViT-L-14-336")
    assert paper.weights == ("clip-vit-l-14-336-openai",)


def test_cmmd_detail_says_values_are_not_the_papers(clip_model: torch.nn.Module) -> None:
    m = CMMD(model=clip_model, model_sha256="random-test-model", n_bootstrap=10)
    ref, cand = random_images(1, 3), random_images(2, 3)
    for i in range(3):
        m.update(ImageSample(f"c{i}", cand[i], ref[i]))
    assert m.compute().detail.startswith("open_clip ViT-B-32 (published CMMD uses ViT-L-14-336); sigma 10")
