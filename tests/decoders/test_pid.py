"""The pid family: the embedded PiD-mini adapter (seeded, stochastic) and the upstream PiD adapter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qa.decoders.base import DecodeBatch
from qa.decoders.pid import EmbeddedPiD, UpstreamPiD, make_pid
from qa.errors import DecoderError
from tests.decoders.decoder_fixtures import build, save, smooth_images


def _batch(z: torch.Tensor, size=None) -> DecodeBatch:
    return DecodeBatch(case_ids=[str(i) for i in range(len(z))], captions=["a photo"] * len(z), latents=z, size=size)


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory) -> tuple[Path, Path]:
    """A zoo-layout VAE folder (AutoencoderKL, 4x) and PiD-mini folder with small random weights."""
    from safetensors.torch import save_file

    from qa.zoo.pid_model import PiDConfig, PiDNet

    root = tmp_path_factory.mktemp("zoo")
    vae = build(
        "AutoencoderKL", block_out_channels=(8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, shift_factor=None,
    )
    save(vae, root / "vae")
    cfg = PiDConfig(width=8, width_low=8, blocks=1, emb_dim=8, groups=4)
    torch.manual_seed(1)
    net = PiDNet(cfg)
    torch.nn.init.normal_(net.out.weight, std=0.05)  # shipped init is zero: make the residual non-trivial
    (root / "pid").mkdir()
    (root / "pid" / "config.json").write_text(json.dumps(cfg.to_dict()))
    save_file(net.state_dict(), str(root / "pid" / "model.safetensors"))
    return root / "pid", root / "vae"


def test_embedded_pid_is_seed_deterministic_and_seed_varying(tiny_zoo):
    pid_dir, vae_dir = tiny_zoo
    dec = make_pid(path=pid_dir, vae_path=vae_dir)
    assert isinstance(dec, EmbeddedPiD) and dec.stochastic and dec.scale == 2 and dec.track == "upscale"
    assert dec.unavailable_reason() is None
    ref = smooth_images(2, 32)
    enc = dec.encoder
    z = enc.encode(ref)
    assert enc.factor == 8 and z.shape == (2, 4, 4, 4)
    a = dec.decode(_batch(z, (32, 32)), seed=1)
    b = dec.decode(_batch(z, (32, 32)), seed=1)
    c = dec.decode(_batch(z, (32, 32)), seed=2)
    assert a.shape == (2, 3, 32, 32) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b)
    assert float((a - c).abs().max()) > 1e-3
    # a case does not depend on the other cases of its batch
    torch.testing.assert_close(dec.decode(_batch(z[1:]), seed=1), a[1:], atol=1e-6, rtol=0)


def test_embedded_pid_encoder_and_baseline_use_the_zoo_vae(tiny_zoo):
    from diffusers import AutoencoderKL

    pid_dir, vae_dir = tiny_zoo
    dec = EmbeddedPiD(path=pid_dir, vae_path=vae_dir)
    vae = AutoencoderKL.from_pretrained(str(vae_dir), local_files_only=True).eval()
    ref = smooth_images(1, 32, seed=4)
    with torch.no_grad():
        z_ref = vae.encode(F.avg_pool2d(ref, 2) * 2 - 1).latent_dist.mean
        base_ref = F.interpolate((vae.decode(z_ref).sample.clamp(-1, 1) + 1) / 2, scale_factor=2, mode="bicubic")
    z = dec.encoder.encode(ref)
    torch.testing.assert_close(z, z_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dec.baseline(_batch(z)), base_ref.clamp(0, 1), atol=1e-5, rtol=1e-5)
    assert dec.encoder.sha256() and dec.weights_sha256() != dec.encoder.sha256()


def test_embedded_pid_corrupt_and_wrong_shape_checkpoints(tiny_zoo, tmp_path):
    import shutil

    pid_dir, vae_dir = tiny_zoo
    bad = shutil.copytree(pid_dir, tmp_path / "corrupt")
    (bad / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(DecoderError, match="model.safetensors"):
        EmbeddedPiD(path=bad, vae_path=vae_dir).decode(_batch(torch.zeros(1, 4, 4, 4)), seed=0)
    wrong = shutil.copytree(pid_dir, tmp_path / "wrong")
    cfg = json.loads((wrong / "config.json").read_text())
    cfg["width"] = 16
    (wrong / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DecoderError, match="does not match"):
        EmbeddedPiD(path=wrong, vae_path=vae_dir).decode(_batch(torch.zeros(1, 4, 4, 4)), seed=0)


def test_embedded_pid_settings_are_checked():
    with pytest.raises(DecoderError, match="degrade_sigma"):
        make_pid(degrade_sigma=3.0)
    with pytest.raises(DecoderError, match="unknown setting"):
        make_pid(checkpoint="x.pth")  # an upstream setting given to the embedded backend
    with pytest.raises(DecoderError, match="backend"):
        make_pid(backend="remote")


def test_shipped_zoo_pid_is_seed_deterministic_and_seed_varying():
    dec = EmbeddedPiD()
    reason = dec.unavailable_reason()
    if reason:
        pytest.skip(f"zoo PiD weights not shipped yet: {reason}")
    ref = smooth_images(1, 64, seed=5)
    z = dec.encoder.encode(ref)
    a, b, c = (dec.decode(_batch(z, (64, 64)), seed=s) for s in (0, 0, 1))
    assert torch.equal(a, b) and float((a - c).abs().max()) > 1e-3


def test_upstream_pid_says_how_to_install_when_absent(monkeypatch):
    monkeypatch.setattr(UpstreamPiD, "package_available", staticmethod(lambda: False))
    dec = make_pid(backend="upstream", checkpoint="/nowhere/model_ema_bf16.pth")
    info = dec.info()
    assert not info.available and info.backend == "upstream" and info.stochastic
    assert "github.com/nv-tlabs/PiD" in info.reason and "not importable" in info.reason


@pytest.mark.upstream
def test_upstream_pid_round_trip():
    dec = UpstreamPiD(
        checkpoint=os.environ.get("QA_PID_CHECKPOINT"), backbone=os.environ.get("QA_PID_BACKBONE", "flux"),
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    reason = dec.unavailable_reason()
    if reason:
        pytest.skip(reason + " (QA_PID_CHECKPOINT and QA_PID_BACKBONE select the checkpoint)")
    f = 16 * dec.scale
    ref = smooth_images(1, 4 * f, seed=0).to(dec.device)
    z = dec.encoder.encode(ref)
    a, b, c = (dec.decode(_batch(z, tuple(ref.shape[-2:])), seed=s) for s in (0, 0, 1))
    assert a.shape == ref.shape
    assert torch.equal(a, b) and float((a - c).abs().max()) > 1e-3
