"""PiD-mini: a small conditional pixel-diffusion decoder in the spirit of NVIDIA PiD.

Given a VAE latent ``z`` (4 channels, ``h x w``; the VAE's native image is ``4h x 4w``) and a degrade
sigma, it samples an image at **2x the VAE's native resolution** (``8h x 8w``).  The network only
generates the residual over ``base = bicubic_up2(vae.decode(z_noisy))``; it is a small conv UNet that
runs at the VAE's native resolution on pixel-unshuffled (space-to-depth) inputs, conditioned on the
diffusion time and the degrade sigma through FiLM.  Fully convolutional: any latent size works.

Units
-----
* ``z``: unscaled VAE latent (``vae.encode(x).latent_dist.mean``) of an image in [-1, 1].
* ``degrade_sigma``: noise std added to the latent in *normalised* latent units
  (``z * scaling_factor`` has unit std), i.e. ``z_noisy = z + degrade_sigma / scaling_factor * eps``.
* Diffusion runs on the normalised residual ``r = (x - base) / residual_std`` with
  ``x_t = cos(pi t / 2) r + sin(pi t / 2) eps``; the network predicts ``r`` (x0-prediction).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class PiDConfig:
    """Hyper-parameters of :class:`PiDNet` and of the diffusion (stored in ``config.json``)."""

    latent_channels: int = 4
    width: int = 48
    width_low: int = 96
    blocks: int = 1
    emb_dim: int = 64
    groups: int = 8
    residual_std: float = 0.1
    max_degrade_sigma: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bicubic_up2(x: torch.Tensor) -> torch.Tensor:
    """Bicubic 2x upsampling (``[N,C,H,W] -> [N,C,2H,2W]``, no antialias, border-replicating)."""
    return F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)


def area_down2(x: torch.Tensor) -> torch.Tensor:
    """2x area (box) downsampling; H, W must be even."""
    return F.avg_pool2d(x, 2)


def cos_schedule(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha, sigma) of the cosine schedule at time ``t`` in [0, 1]."""
    return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)


def fourier(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a ``[N]`` tensor in [0, ~1] into ``[N, dim]``."""
    half = dim // 2
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), half, device=x.device))
    a = x[:, None].float() * freqs[None] * math.pi
    return torch.cat([a.sin(), a.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv residual block with FiLM (scale/shift) from the embedding."""

    def __init__(self, ch: int, emb: int, groups: int) -> None:
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(groups, ch), nn.Conv2d(ch, ch, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(groups, ch), nn.Conv2d(ch, ch, 3, padding=1)
        self.film = nn.Linear(emb, 2 * ch)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        s, b = self.film(e)[:, :, None, None].chunk(2, dim=1)
        h = self.n2(h) * (1 + s) + b
        return x + self.c2(F.silu(h))


class PiDNet(nn.Module):
    """x0-predictor of the normalised residual.

    ``forward(x_t [N,3,2H,2W], base [N,3,2H,2W] in [-1,1], z [N,4,H/4,W/4] normalised, t [N], sigma [N])``
    returns the predicted residual ``[N,3,2H,2W]``; ``H``, ``W`` (native resolution) must be even.
    """

    def __init__(self, cfg: PiDConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w, wl, e = cfg.width, cfg.width_low, cfg.emb_dim
        self.emb = nn.Sequential(nn.Linear(2 * e, e), nn.SiLU(), nn.Linear(e, e))
        self.inp = nn.Conv2d(12 + 12 + cfg.latent_channels, w, 3, padding=1)
        self.enc = nn.ModuleList(ResBlock(w, e, cfg.groups) for _ in range(cfg.blocks))
        self.down = nn.Conv2d(w, wl, 3, stride=2, padding=1)
        self.mid = nn.ModuleList(ResBlock(wl, e, cfg.groups) for _ in range(cfg.blocks))
        self.up = nn.Conv2d(wl, w, 3, padding=1)
        self.merge = nn.Conv2d(2 * w, w, 1)
        self.dec = nn.ModuleList(ResBlock(w, e, cfg.groups) for _ in range(cfg.blocks))
        self.out_norm = nn.GroupNorm(cfg.groups, w)
        self.out = nn.Conv2d(w, 12, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]

    def forward(self, x_t: torch.Tensor, base: torch.Tensor, z: torch.Tensor, t: torch.Tensor,
                sigma: torch.Tensor) -> torch.Tensor:
        e = self.emb(torch.cat([fourier(t, self.cfg.emb_dim),
                                fourier(sigma / self.cfg.max_degrade_sigma, self.cfg.emb_dim)], dim=1))
        size = (x_t.shape[-2] // 2, x_t.shape[-1] // 2)
        zu = F.interpolate(z, size=size, mode="nearest")
        h = self.inp(torch.cat([F.pixel_unshuffle(x_t, 2), F.pixel_unshuffle(base, 2), zu], dim=1))
        for b in self.enc:
            h = b(h, e)
        skip = h
        h = self.down(h)
        for b in self.mid:
            h = b(h, e)
        h = self.up(F.interpolate(h, size=size, mode="nearest"))
        h = self.merge(torch.cat([h, skip], dim=1))
        for b in self.dec:
            h = b(h, e)
        return F.pixel_shuffle(self.out(F.silu(self.out_norm(h))), 2)


class PiDMini(nn.Module):
    """The PiD-mini decoder: :class:`PiDNet` plus the frozen zoo VAE used for the base image."""

    def __init__(self, net: PiDNet, vae: Any) -> None:
        super().__init__()
        self.net = net
        self.vae = vae
        self.cfg = net.cfg
        self.scaling_factor = float(vae.config.scaling_factor)

    @torch.no_grad()
    def base_image(self, z_noisy: torch.Tensor) -> torch.Tensor:
        """``bicubic_up2(vae.decode(z_noisy))`` in [-1, 1], ``[N,3,8h,8w]`` for an unscaled latent ``[N,4,h,w]``."""
        return bicubic_up2(self.vae.decode(z_noisy).sample.clamp(-1, 1))

    def degrade(self, z: torch.Tensor, degrade_sigma: float | torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise augmentation ``z + degrade_sigma / scaling_factor * eps`` (sigma in normalised units)."""
        s = torch.as_tensor(degrade_sigma, dtype=z.dtype).reshape(-1, 1, 1, 1)
        eps = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
        return z + s.to(z.device) / self.scaling_factor * eps

    @torch.no_grad()
    def sample(self, z: torch.Tensor, degrade_sigma: float = 0.0, seed: int = 0, steps: int = 4,
               eta: float = 0.5) -> torch.Tensor:
        """Sample an image at 2x the VAE's native resolution.

        Args:
            z: unscaled VAE latent ``[N,4,h,w]`` (``latent_dist.mean``); any ``h, w``.
            degrade_sigma: latent noise augmentation in normalised latent units (trained on [0, 0.5]).
            seed: seeds a CPU ``torch.Generator``; the same seed gives bit-identical output (on CPU).
            steps: number of DDIM-like denoising steps (fresh noise each step, weight ``eta``).
            eta: stochasticity of each step (0 = DDIM, 1 = ancestral).
        Returns:
            ``[N,3,8h,8w]`` float tensor in [0, 1].
        """
        if z.ndim != 4 or z.shape[1] != self.cfg.latent_channels:
            raise ValueError(f"z must be [N,{self.cfg.latent_channels},h,w], got {tuple(z.shape)}")
        dev = z.device
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        z = z.float()
        z_noisy = self.degrade(z, float(degrade_sigma), g) if degrade_sigma > 0 else z
        base = self.base_image(z_noisy)
        zn = z_noisy * self.scaling_factor
        n = z.shape[0]
        sig = torch.full((n,), float(degrade_sigma), device=dev)
        x = torch.randn(base.shape, generator=g).to(dev)
        ts = torch.linspace(1.0, 0.0, steps + 1)
        r0 = torch.zeros_like(base)
        for i in range(steps):
            t, tn = ts[i], ts[i + 1]
            r0 = self.net(x, base, zn, torch.full((n,), float(t), device=dev), sig)
            if i == steps - 1:
                break
            a, s = cos_schedule(t)
            an, sn = cos_schedule(tn)
            eps_hat = (x - a * r0) / s.clamp_min(1e-4)
            c = eta * sn / s.clamp_min(1e-4) * torch.sqrt((1 - (a / an) ** 2).clamp_min(0))
            c = c.clamp(0, float(sn))
            fresh = torch.randn(base.shape, generator=g).to(dev)
            x = an * r0 + torch.sqrt(sn ** 2 - c ** 2) * eps_hat + c * fresh
        out = base + r0 * self.cfg.residual_std
        return ((out.clamp(-1, 1) + 1) / 2).float()
