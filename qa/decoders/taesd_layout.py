"""The tiny-autoencoder (TAESD family) network layout, written from the layer facts of the original state dicts.

Members (latent channels at 1/8 of the image side; pixels RGB in [0, 1]). Which latents a member takes differs:
taesd, taesdxl, taesd3 and taef1 take the diffusion model's *scaled* latents, the ones its denoiser works on (the
VAE's latent after its scaling factor and shift, e.g. SD's ``0.18215 * z``: the TAESD README's ``scale_factor`` is
1 where the SD VAE's is 0.18215); taef2 takes raw FLUX.2 VAE latents (before the pipeline's 2x2 patchify and
batch-norm, which the ``vae`` adapter applies). qa pairs each decoder with its own encoder, so its numbers do not
depend on this; a member fed the VAE's unscaled latents (SD's ``z`` rather than ``0.18215 * z``) decodes wrongly.

========  ========  ==========================================================
variant   channels  mid blocks
========  ========  ==========================================================
taesd     4         plain (SD 1.x/2.x latent space)
taesdxl   4         plain (SDXL)
taesd3    16        plain (SD3)
taef1     16        plain (FLUX.1)
taef2     32        with a GroupNorm pool residual (FLUX.2), see :class:`Block`
========  ========  ==========================================================

Parameter names are ``nn.Sequential`` indices, so the original ``.pth`` files load strictly:

- encoder: 0 conv(3,64); 1 Block; 2 conv(64,64,stride 2,no bias); 3-5 Block; 6 conv s2; 7-9 Block; 10 conv s2;
  11-13 Block (pooled in taef2); 14 conv(64,C).
- decoder: 0 soft clamp ``3*tanh(z/3)``; 1 conv(C,64); 2 ReLU; 3-5 Block (pooled in taef2); 6 upsample x2;
  7 conv no bias; 8-10 Block; 11 upsample; 12 conv; 13-15 Block; 16 upsample; 17 conv; 18 Block; 19 conv(64,3).
  No output activation: callers clamp to [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from qa.errors import DecoderError

WIDTH = 64  # feature channels of every block
FACTOR = 8  # pixels per latent cell along each side


@dataclass(frozen=True)
class Variant:
    """One member of the family: its latent channels and whether its mid blocks have the GroupNorm pool."""

    name: str
    channels: int
    pooled: bool
    latent_space: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("taesd", 4, False, "Stable Diffusion 1.x/2.x VAE"),
        Variant("taesdxl", 4, False, "SDXL VAE"),
        Variant("taesd3", 16, False, "SD3 VAE"),
        Variant("taef1", 16, False, "FLUX.1 VAE"),
        Variant("taef2", 32, True, "FLUX.2 VAE"),
    )
}


def conv(n_in: int, n_out: int, **kwargs: object) -> nn.Conv2d:
    """3x3 convolution with padding 1 (``stride`` / ``bias`` as given)."""
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)  # type: ignore[arg-type]


class Clamp(nn.Module):
    """Soft clamp of the latent: ``3 * tanh(z / 3)`` (identity near 0, bounded by +-3)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z / 3.0) * 3.0


class Block(nn.Module):
    """Residual block 64 -> 64: ``relu(conv-path(x) + x)``; the conv path is conv, ReLU, conv, ReLU, conv.

    ``pooled``: the input first gets ``x = x + pool(x)`` with pool = 1x1 conv 64->256 (no bias),
    GroupNorm(4, 256), ReLU, 1x1 conv 256->64 (no bias) (taef2's mid blocks).
    """

    def __init__(self, pooled: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv(WIDTH, WIDTH), nn.ReLU(), conv(WIDTH, WIDTH), nn.ReLU(), conv(WIDTH, WIDTH))
        self.pool: nn.Module | None = None
        if pooled:
            self.pool = nn.Sequential(
                nn.Conv2d(WIDTH, 4 * WIDTH, 1, bias=False),
                nn.GroupNorm(4, 4 * WIDTH),
                nn.ReLU(),
                nn.Conv2d(4 * WIDTH, WIDTH, 1, bias=False),
            )
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + x)


def build_encoder(variant: Variant) -> nn.Sequential:
    """Pixels (N, 3, H, W) in [0, 1] -> raw latents (N, C, H/8, W/8); H, W multiples of 8."""
    down = lambda: conv(WIDTH, WIDTH, stride=2, bias=False)  # noqa: E731
    p = variant.pooled
    return nn.Sequential(
        conv(3, WIDTH), Block(),
        down(), Block(), Block(), Block(),
        down(), Block(), Block(), Block(),
        down(), Block(p), Block(p), Block(p),
        conv(WIDTH, variant.channels),
    )


def build_decoder(variant: Variant) -> nn.Sequential:
    """Raw latents (N, C, h, w) -> pixels (N, 3, 8h, 8w), nominally in [0, 1] (not clamped here)."""
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    mid = lambda: conv(WIDTH, WIDTH, bias=False)  # noqa: E731
    p = variant.pooled
    return nn.Sequential(
        Clamp(), conv(variant.channels, WIDTH), nn.ReLU(),
        Block(p), Block(p), Block(p),
        up(), mid(), Block(), Block(), Block(),
        up(), mid(), Block(), Block(), Block(),
        up(), mid(), Block(),
        conv(WIDTH, 3),
    )


def detect_variant(encoder: Mapping[str, torch.Tensor], decoder: Mapping[str, torch.Tensor], source: str) -> Variant:
    """The family member whose layout these state dicts have (latent channels and pooled mid blocks), checked
    for agreement between encoder and decoder. Where two members share a layout (taesd / taesdxl, taesd3 /
    taef1) the first is returned: the layout is the same, only the trained latent space differs."""
    try:
        enc_c = int(encoder["14.weight"].shape[0])
        dec_c = int(decoder["1.weight"].shape[1])
    except KeyError as exc:
        raise DecoderError(
            f"{source}: not a TAESD-layout state dict (no tensor {exc.args[0]!r})",
            "expected the original taesd/taef1/taef2 *_encoder.pth and *_decoder.pth files",
        ) from exc
    if enc_c != dec_c:
        raise DecoderError(f"{source}: encoder makes {enc_c}-channel latents, decoder takes {dec_c}",
                           "use an encoder and decoder of the same release")
    pooled_enc = any(".pool." in k for k in encoder)
    pooled_dec = any(".pool." in k for k in decoder)
    if pooled_enc != pooled_dec:
        raise DecoderError(f"{source}: encoder and decoder disagree on the GroupNorm pools")
    for v in VARIANTS.values():
        if v.channels == enc_c and v.pooled == pooled_enc:
            return v
    raise DecoderError(f"{source}: no TAESD family member has {enc_c} latent channels"
                       f"{' with pooled mid blocks' if pooled_enc else ''}",
                       f"known: {', '.join(f'{v.name} ({v.channels})' for v in VARIANTS.values())}")
