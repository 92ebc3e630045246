"""Inference API of the embedded zoo (pure torch; weights load through safetensors only).

* :func:`load_zoo_vae` -> diffusers ``AutoencoderKL`` (4 latent channels, 4x downsampling, pixels in [-1, 1]).
* :func:`load_zoo_pid` -> :class:`~qa.zoo.pid_model.PiDMini`, whose ``sample(z, degrade_sigma, seed, steps)``
  maps an unscaled latent ``[N,4,h,w]`` to an image ``[N,3,8h,8w]`` in [0, 1] (2x the VAE's native size).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from qa.zoo.pid_model import PiDConfig, PiDMini, PiDNet

ZOO_DIR: Path = Path(__file__).resolve().parent / "weights"
ZOO_VAE_DIR: Path = ZOO_DIR / "vae"
ZOO_PID_DIR: Path = ZOO_DIR / "pid"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
PID_WEIGHTS_NAME = "model.safetensors"


class ZooWeightsError(RuntimeError):
    """A zoo checkpoint is missing, corrupted or does not match its configuration."""


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file on CPU; a missing or corrupted file raises :class:`ZooWeightsError` naming it."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ZooWeightsError(f"zoo weights not found: {path}")
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises SafetensorError / OSError / ValueError
        raise ZooWeightsError(f"cannot read safetensors checkpoint {path}: {e}") from e


def load_zoo_vae(device: str | torch.device = "cpu", path: Path | None = None) -> Any:
    """The zoo VAE (diffusers ``AutoencoderKL``) in eval mode, gradients off.

    ``encode(x)`` takes ``[N,3,H,W]`` in [-1, 1] (H, W multiples of 4) and gives a latent ``[N,4,H/4,W/4]``;
    ``config.scaling_factor`` normalises the latent to unit std.  ``path`` defaults to :data:`ZOO_VAE_DIR`.
    """
    from diffusers import AutoencoderKL

    d = Path(path or ZOO_VAE_DIR)
    cfg_path, w_path = d / "config.json", d / WEIGHTS_NAME
    if not cfg_path.is_file():
        raise ZooWeightsError(f"zoo VAE config not found: {cfg_path}")
    state = read_safetensors(w_path)  # validates the file with a clear error before diffusers sees it
    try:
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(d)))
        vae.load_state_dict(state, strict=True)
    except Exception as e:
        raise ZooWeightsError(f"zoo VAE checkpoint {w_path} does not match {cfg_path}: {e}") from e
    return vae.to(device).eval().requires_grad_(False)


def load_zoo_pid(device: str | torch.device = "cpu", path: Path | None = None,
                 vae: Any | None = None) -> PiDMini:
    """PiD-mini (with the zoo VAE inside for its base image) in eval mode, gradients off.

    ``sample(z, degrade_sigma=0.0, seed=0, steps=4)``: ``z`` unscaled latent ``[N,4,h,w]`` -> ``[N,3,8h,8w]``
    in [0, 1]; stochastic across seeds, bit-identical for one seed on CPU.
    """
    d = Path(path or ZOO_PID_DIR)
    cfg_path, w_path = d / "config.json", d / PID_WEIGHTS_NAME
    if not cfg_path.is_file():
        raise ZooWeightsError(f"zoo PiD config not found: {cfg_path}")
    try:
        cfg = PiDConfig(**json.loads(cfg_path.read_text()))
    except Exception as e:
        raise ZooWeightsError(f"bad zoo PiD config {cfg_path}: {e}") from e
    state = read_safetensors(w_path)
    net = PiDNet(cfg)
    try:
        net.load_state_dict(state, strict=True)
    except Exception as e:
        raise ZooWeightsError(f"zoo PiD checkpoint {w_path} does not match {cfg_path}: {e}") from e
    model = PiDMini(net, vae if vae is not None else load_zoo_vae("cpu"))
    return model.to(device).eval().requires_grad_(False)
