"""CLIP score and CMMD against independent computations from the same (small, random) open_clip model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qa.metrics.base import ImageSample, MetricInputError
from qa.metrics.clip import CMMD, MEAN, STD, CLIPScore
from tests.metrics.clip_helpers import random_images, tiny_clip

open_clip = pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_clip(0)



def _embed(model: torch.nn.Module, imgs: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model.encode_image(x)


def test_clip_score_equals_independent(model: torch.nn.Module) -> None:
    imgs = random_images(0, 5)
    captions = ["a red bus", "two cats on a sofa", "mountain lake", "a bowl of soup", "city at night"]
    metric = CLIPScore(model=model, model_sha256="random-test-model", n_bootstrap=50)
    for i in range(5):
        metric.update(ImageSample(f"c{i}", imgs[i], caption=captions[i]))
    v = metric.compute()
    tok = open_clip.get_tokenizer("ViT-B-32")
    with torch.no_grad():
        t = model.encode_text(tok(captions))
    cos = torch.nn.functional.cosine_similarity(_embed(model, imgs), t, dim=1).double()
    expected = torch.clamp(100 * cos, min=0).mean().item()
    assert v.value == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert v.n == 5 and v.ci_low <= v.value <= v.ci_high


def test_cmmd_equals_formula(model: torch.nn.Module) -> None:
    ref, out = random_images(1, 6), random_images(2, 5)
    metric = CMMD(model=model, model_sha256="random-test-model", n_bootstrap=50)
    for i in range(5):
        metric.update(ImageSample(f"c{i}", out[i], ref[i]))
    metric.update(ImageSample("c5", out[0], ref[5]))  # a 6th reference; output repeated
    v = metric.compute()
    x = torch.nn.functional.normalize(_embed(model, ref).double(), dim=1)
    y = torch.nn.functional.normalize(_embed(model, np.concatenate([out, out[:1]])).double(), dim=1)
    k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * 10.0**2)).mean()  # noqa: E731
    expected = 1000 * (k(x, x) + k(y, y) - 2 * k(x, y)).item()
    assert v.value == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert np.isfinite(v.ci_low) and v.ci_low <= v.ci_high


def test_nan_output_is_error_and_missing_weights_say_fix(model: torch.nn.Module, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    bad = random_images(3, 1)[0]
    bad[1, 1, 1] = np.nan
    with pytest.raises(MetricInputError, match="NaN"):
        CMMD(model=model).update(ImageSample("bad", bad, bad))
    monkeypatch.setenv("QA_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    reason = CLIPScore().unavailable_reason()
    assert reason is not None and "qa weights fetch clip-vit-b-32-openai" in reason


@pytest.mark.parametrize("kind", ["clip_score", "cmmd"])
def test_per_shard_states_merge_to_the_single_process_result(model: torch.nn.Module, kind: str) -> None:
    import pickle

    make = (lambda: CLIPScore(model=model, model_sha256="random-test-model", n_bootstrap=30)) if kind == "clip_score" \
        else (lambda: CMMD(model=model, model_sha256="random-test-model", n_bootstrap=30))
    ref, cand = random_images(1, 6), random_images(2, 6)
    samples = [ImageSample(f"c{i}", cand[i], ref[i], caption=f"a photo number {i}") for i in range(6)]
    whole = make()
    for s in samples:
        whole.update(s)
    parts = [make(), make()]
    for i, s in enumerate(samples):
        parts[i // 3].update(s)
    merged = make()
    for p in parts:
        merged.merge_state(pickle.loads(pickle.dumps(p.export_state())))
    a, b = whole.compute(), merged.compute()
    # float32 embeddings of batches of 3 and of 6 differ in the last bits; the merge itself is exact
    assert (b.value, b.ci_low, b.ci_high, b.n) == pytest.approx((a.value, a.ci_low, a.ci_high, a.n), rel=1e-5)
