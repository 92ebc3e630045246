"""Fixtures for the decoder adapter tests: small-config instances of the real diffusers classes, saved with
``save_pretrained`` into a temporary folder and loaded back through the adapters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

#: Small but complete configurations of each supported class (same fields the released models use).
SMALL_CONFIGS: dict[str, dict[str, Any]] = {
    "AutoencoderKL": dict(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4, sample_size=32, scaling_factor=0.5, shift_factor=0.1,
    ),
    "AutoencoderTiny": dict(
        in_channels=3, out_channels=3, latent_channels=4, encoder_block_out_channels=(8, 8, 8),
        decoder_block_out_channels=(8, 8, 8), num_encoder_blocks=(1, 1, 1), num_decoder_blocks=(1, 1, 1),
        upsampling_scaling_factor=2,
    ),
    "AutoencoderDC": dict(
        in_channels=3, latent_channels=4, attention_head_dim=2,
        encoder_block_types=("ResBlock", "EfficientViTBlock"), decoder_block_types=("ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
        encoder_qkv_multiscales=((), (5,)), decoder_qkv_multiscales=((), (5,)),
        encoder_layers_per_block=(1, 1), decoder_layers_per_block=(1, 1),
        downsample_block_type="conv", upsample_block_type="interpolate",
        decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41407,
    ),
    "AutoencoderKLFlux2": dict(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4, sample_size=32,
    ),
}


def build(cls_name: str, seed: int = 0, **overrides: Any) -> Any:
    """A randomly initialised (seeded) diffusers model of ``cls_name`` with the small config."""
    import diffusers

    cls = getattr(diffusers, cls_name)
    torch.manual_seed(seed)
    model = cls(**{**SMALL_CONFIGS[cls_name], **overrides}).eval()
    if cls_name == "AutoencoderKLFlux2":  # non-trivial BatchNorm statistics, as a trained model has
        with torch.no_grad():
            model.bn.running_mean.uniform_(-0.5, 0.5)
            model.bn.running_var.uniform_(0.5, 2.0)
    return model


def save(model: Any, folder: Path) -> Path:
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def vae_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    """{class name: (in-memory model, its save_pretrained folder)} for every supported class installed."""
    import diffusers

    out = {}
    root = tmp_path_factory.mktemp("vaes")
    for name in SMALL_CONFIGS:
        if hasattr(diffusers, name):
            model = build(name)
            out[name] = (model, save(model, root / name))
    return out


def smooth_images(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) smooth random images in [0, 1] (bilinear upsampling of coarse noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
