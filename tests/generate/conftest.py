"""A tiny generate-track zoo built in a temporary folder: random small VAE and PiD-mini, an LDM and an L2P pixel
model each trained for two steps by the real training scripts (smoke runs on random arrays; never shipped)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qa.generate.nets import DiTConfig

CAPTIONS = ["a red apple on a table", "a small brown dog"]


def tiny_vae() -> torch.nn.Module:
    """A random AutoencoderKL with the zoo's layout (4 channels, 4x downsampling) but 8 channels wide."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 8, 8), layers_per_block=1,
        norm_num_groups=4, mid_block_add_attention=False, scaling_factor=2.0,
    ).eval().requires_grad_(False)


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Folders ``vae``, ``pid``, ``ldm``, ``l2p`` plus the training statistics of the two smoke runs."""
    from safetensors.torch import save_file

    from qa.generate.nets import load_model, save_model
    from qa.zoo.pid_model import PiDConfig, PiDNet
    from training.generate import train_l2p, train_ldm

    root = tmp_path_factory.mktemp("tiny_generate_zoo")
    vae = tiny_vae()
    vae.save_pretrained(str(root / "vae"), safe_serialization=True)
    torch.manual_seed(1)
    pcfg = PiDConfig(width=8, width_low=8, blocks=1, emb_dim=8, groups=4)
    (root / "pid").mkdir()
    (root / "pid" / "config.json").write_text(json.dumps(pcfg.to_dict()))
    save_file({k: v.contiguous() for k, v in PiDNet(pcfg).state_dict().items()}, str(root / "pid" / "model.safetensors"))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (80, 100, 3), dtype=np.uint8) for _ in CAPTIONS]
    cfg = DiTConfig(width=32, depth=4, heads=2)
    ldm_stats = train_ldm.train(root / "ldm", 5.0, 2, 0, 8, batch=4, vae=vae, images=images, captions=CAPTIONS,
                                cfg=cfg)
    ldm = load_model(root / "ldm")
    with torch.no_grad():  # two steps leave the zero-initialised head near zero: make the LDM depend on its noise
        for p in ldm.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    save_model(ldm, root / "ldm", json.loads((root / "ldm" / "config.json").read_text())["training"])
    l2p_stats = train_l2p.train(root / "l2p", ldm, vae, 5.0, 2, 0, 4, batch=2, prompts=CAPTIONS, gen_steps=2)
    return {"root": root, "ldm_stats": ldm_stats, "l2p_stats": l2p_stats,
            "settings": {"ldm_path": root / "ldm", "l2p_path": root / "l2p", "vae_path": root / "vae",
                         "pid_path": root / "pid", "steps": 2}}
