"""Tests of the shipped zoo weights: VAE quality, PiD determinism/stochasticity, corrupted files."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from qa.zoo.models import ZOO_PID_DIR, ZOO_VAE_DIR, ZooWeightsError, load_zoo_pid, load_zoo_vae


@pytest.fixture(scope="module")
def vae():  # type: ignore[no-untyped-def]
    return load_zoo_vae()


@pytest.fixture(scope="module")
def pid(vae):  # type: ignore[no-untyped-def]
    return load_zoo_pid(vae=vae)


def test_vae_round_trip_psnr(vae, astronaut_crop: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        z = vae.encode(astronaut_crop * 2 - 1).latent_dist.mean
        y = (vae.decode(z).sample.clamp(-1, 1) + 1) / 2
    assert z.shape == (1, 4, 16, 16)
    psnr = 10 * math.log10(1 / torch.mean((y - astronaut_crop) ** 2).item())
    assert psnr > 22.0


def test_pid_seed_deterministic_and_varying(pid, vae, astronaut_crop: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        z = vae.encode(astronaut_crop[..., :32, :32] * 2 - 1).latent_dist.mean
    a = pid.sample(z, degrade_sigma=0.2, seed=7)
    b = pid.sample(z, degrade_sigma=0.2, seed=7)
    c = pid.sample(z, degrade_sigma=0.2, seed=8)
    assert a.shape == (1, 3, 64, 64)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and (a - c).abs().mean() > 1e-4


def test_pid_any_size(pid) -> None:  # type: ignore[no-untyped-def]
    out = pid.sample(torch.zeros(1, 4, 6, 10), degrade_sigma=0.0, seed=0, steps=1)
    assert out.shape == (1, 3, 48, 80)


@pytest.mark.parametrize("which", ["vae", "pid"])
def test_corrupted_safetensors_clear_error(tmp_path: Path, which: str) -> None:
    src = ZOO_VAE_DIR if which == "vae" else ZOO_PID_DIR
    dst = tmp_path / which
    shutil.copytree(src, dst)
    w = next(dst.glob("*.safetensors"))
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises((ValueError, RuntimeError), match=str(w.name)):
        if which == "vae":
            load_zoo_vae(path=dst)
        else:
            load_zoo_pid(path=dst)


def test_wrong_shape_checkpoint_clear_error(tmp_path: Path) -> None:
    dst = tmp_path / "pid"
    shutil.copytree(ZOO_PID_DIR, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["width"] = cfg["width"] * 2
    (dst / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ZooWeightsError, match="does not match"):
        load_zoo_pid(path=dst)
