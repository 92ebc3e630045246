"""The pid family: the embedded PiD-mini adapter (seeded, stochastic) and the upstream PiD adapter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qa.decoders.base import DecodeBatch
from qa.decoders.pid import EmbeddedPiD, make_pid
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


def test_upstream_pid_says_exactly_what_is_missing_and_how_to_fix_it(tmp_path):
    """No checkout, checkpoint, VAE, text encoder or CUDA: each named in the unavailable reason with its fix."""
    from qa.decoders import pid_upstream_env as env

    dec = make_pid(backend="upstream", repo=tmp_path / "PiD", checkpoint=tmp_path / "model_ema_bf16.pth")
    info = dec.info()
    assert not info.available and info.backend == "upstream" and info.stochastic and info.scale == 4
    reason = info.reason
    assert f"{tmp_path / 'PiD'}: not a PiD checkout" in reason and "git clone https://github.com/nv-tlabs/PiD" in reason
    assert f"{tmp_path / 'model_ema_bf16.pth'}: PiD checkpoint not found" in reason
    assert f"{tmp_path / 'PiD' / 'checkpoints' / 'ae.safetensors'}: VAE file not found; set vae_path" in reason
    assert "no local text encoder" in reason and "--local-dir" in reason and "text_encoder_path" in reason
    if env.cuda_reason():
        assert "no CUDA device" in reason
    if env.missing_modules():
        assert "PiD's dependencies are not importable" in reason and "pip install" in reason
    with pytest.raises(DecoderError, match="not a PiD checkout"):  # never a download, never a silent fallback
        dec.decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)


def test_upstream_pid_without_cuda_says_so(monkeypatch, tmp_path):
    from qa.decoders import pid_upstream_env as env

    monkeypatch.setattr(env.torch.cuda, "is_available", lambda: False)
    reason = make_pid(backend="upstream", checkpoint=tmp_path / "x.pth").unavailable_reason() or ""
    assert "no CUDA device: PiD's code hard-codes 'cuda'" in reason
    # upstream runs on cuda whatever qa's device is
    assert make_pid(backend="upstream", device="cpu").device.type == "cuda"


def test_upstream_pid_settings_are_checked(tmp_path):
    with pytest.raises(DecoderError, match="schedule has 4 steps"):
        make_pid(backend="upstream", steps=5)
    with pytest.raises(DecoderError, match="unknown backbone"):
        make_pid(backend="upstream", backbone="flux3")
    with pytest.raises(DecoderError, match="has no '2k' checkpoint"):
        make_pid(backend="upstream", backbone="qwenimage", checkpoint_type="2k")
    with pytest.raises(DecoderError, match="vae_path applies to the VAE backbones"):
        make_pid(backend="upstream", backbone="dinov2", vae_path=tmp_path / "x.safetensors")
    # the default checkpoint type is one the backbone has; siglip's checkpoint upscales 8x
    assert make_pid(backend="upstream", backbone="sdxl").checkpoint_type == "2kto4k"
    assert make_pid(backend="upstream", backbone="qwenimage").checkpoint_type == "2kto4k_v1pt5"
    assert make_pid(backend="upstream", backbone="flux").checkpoint_type == "2k"
    assert make_pid(backend="upstream", backbone="siglip").scale == 8


def test_upstream_pid_refuses_safetensors_and_pickled_dcp_before_running_upstream(monkeypatch, tmp_path):
    from qa.decoders import pid_upstream_env as env

    repo = tmp_path / "PiD"
    for rel in ("pid/_src/utils/model_loader.py", env.CONFIG_FILE):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("raise SystemExit('upstream must not be imported by this test')\n")
    (repo / "checkpoints").mkdir()
    (repo / "checkpoints" / "ae.safetensors").write_bytes(b"x")
    (tmp_path / "gemma").mkdir()
    (tmp_path / "gemma" / "config.json").write_text("{}")
    monkeypatch.setattr(env, "cuda_reason", lambda: None)
    monkeypatch.setattr(env, "missing_modules", lambda: [])
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"x")
    dec = make_pid(backend="upstream", repo=repo, checkpoint=ckpt, text_encoder_path=tmp_path / "gemma")
    assert dec.unavailable_reason() is None
    with pytest.raises(DecoderError, match=r"model\.safetensors: PiD loads a \.pth file or a DCP folder"):
        dec.decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)
    corrupt = tmp_path / "model_ema_bf16.pth"
    corrupt.write_bytes(b"\x00" * 32)
    dec = make_pid(backend="upstream", repo=repo, checkpoint=corrupt, text_encoder_path=tmp_path / "gemma")
    with pytest.raises(DecoderError, match="model_ema_bf16.pth"):
        dec.decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)
    (tmp_path / "dcp" / "model").mkdir(parents=True)
    (tmp_path / "dcp" / "model" / ".metadata").write_bytes(b"x")
    dec = make_pid(backend="upstream", repo=repo, checkpoint=tmp_path / "dcp", text_encoder_path=tmp_path / "gemma")
    with pytest.raises(DecoderError, match="metadata is a pickle"):
        dec.decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)


def test_upstream_process_restores_state_and_forces_the_hub_offline(tmp_path):
    import random
    import sys

    import numpy as np

    from qa.decoders import pid_upstream_env as env

    torch.manual_seed(7)
    random.seed(7)
    np.random.seed(7)
    expected = (torch.rand(2), random.random(), np.random.rand())
    torch.manual_seed(7)
    random.seed(7)
    np.random.seed(7)
    cwd, path, bench = os.getcwd(), list(sys.path), torch.backends.cudnn.benchmark
    offline = os.environ.get("HF_HUB_OFFLINE")
    with env.upstream_process(tmp_path):
        assert os.getcwd() == str(tmp_path) and sys.path[0] == str(tmp_path)
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
        try:
            import huggingface_hub.constants as hub
        except ImportError:
            pass
        else:
            assert hub.HF_HUB_OFFLINE is True
        torch.manual_seed(0)  # what upstream's loader does
        random.seed(0)
        np.random.seed(0)
        torch.backends.cudnn.benchmark = not bench
        torch.backends.cuda.matmul.allow_tf32 = True
    assert os.getcwd() == cwd and sys.path == path and torch.backends.cudnn.benchmark == bench
    assert os.environ.get("HF_HUB_OFFLINE") == offline
    got = (torch.rand(2), random.random(), np.random.rand())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]
    assert env.hydra_string("/a b/it's\\x") == "'/a b/it\\'s\\\\x'"


@pytest.mark.upstream
def test_upstream_pid_round_trip_with_real_weights():
    """Real PiD weights on a CUDA machine: QA_PID_REPO, QA_PID_CHECKPOINT, QA_PID_VAE, QA_PID_TEXT_ENCODER."""
    dec = make_pid(
        backend="upstream", repo=os.environ.get("QA_PID_REPO"), checkpoint=os.environ.get("QA_PID_CHECKPOINT"),
        vae_path=os.environ.get("QA_PID_VAE"), text_encoder_path=os.environ.get("QA_PID_TEXT_ENCODER"),
        backbone=os.environ.get("QA_PID_BACKBONE", "flux"),
    )
    reason = dec.unavailable_reason()
    if reason:
        pytest.skip(reason + " (QA_PID_REPO, QA_PID_CHECKPOINT, QA_PID_VAE, QA_PID_TEXT_ENCODER select them)")
    f = dec.encoder.factor
    ref = smooth_images(1, 4 * f, seed=0)
    z = dec.encoder.encode(ref)
    a, b, c = (dec.decode(_batch(z, tuple(ref.shape[-2:])), seed=s) for s in (0, 0, 1))
    assert a.shape == ref.shape
    assert torch.equal(a, b) and float((a - c).abs().max()) > 1e-3


def test_upstream_pid_config_file_is_made_relative_to_the_checkout(tmp_path):
    repo = tmp_path / "PiD"
    dec = make_pid(backend="upstream", repo=repo, config_file=repo / "pid" / "my_config.py")
    assert dec._config_file(repo.resolve()) == "pid/my_config.py"
    assert make_pid(backend="upstream", repo=repo)._config_file(repo) == "pid/_src/configs/pid/config.py"
    outside = make_pid(backend="upstream", repo=repo, config_file=tmp_path / "elsewhere.py")
    with pytest.raises(DecoderError, match="must lie inside the checkout"):
        outside._config_file(repo.resolve())
