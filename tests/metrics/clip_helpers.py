"""A tiny random open_clip model and random images for the CLIP score / CMMD tests (no weights needed)."""

from __future__ import annotations

import numpy as np
import torch


def tiny_clip(seed: int = 0) -> torch.nn.Module:
    """An open_clip CLIP with 32-d embeddings and 32 x 32 px input, random weights drawn with ``seed``."""
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(seed)
    return open_clip.CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
    ).eval()


def random_images(seed: int, n: int) -> np.ndarray:
    """(n, 32, 32, 3) float32 in [0, 1], exact multiples of 1/255 (qa's uint8 rounding of them is lossless)."""
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype(np.float32) / 255.0
