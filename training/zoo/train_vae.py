"""Train the zoo's default VAE: a small diffusers ``AutoencoderKL`` (4 latent channels, 4x downsampling).

Usage::

    python -m training.zoo.train_vae --out qa/zoo/weights/vae --minutes 25 --seed 0

Pixels are in [-1, 1].  Loss = L1 + 0.5*MSE + 0.1*L1(image gradients) + 1e-6*KL (+ lf_weight * low-frequency colour MSE).  After training,
``scaling_factor`` in the saved config is set to 1/std of the latent means on the training crops.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.zoo import data as zdata

VAE_CONFIG: dict[str, Any] = dict(
    in_channels=3, out_channels=3, latent_channels=4,
    down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8,
    sample_size=256, mid_block_add_attention=False, scaling_factor=1.0,
)


def build_vae(config: dict[str, Any] | None = None) -> Any:
    """A fresh (untrained) AutoencoderKL with the zoo configuration."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(**(config or VAE_CONFIG))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors in [0, 1]."""
    mse = F.mse_loss(a.clamp(0, 1), b.clamp(0, 1)).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def grad_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 distance between horizontal and vertical finite differences."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(x), dx(y)) + F.l1_loss(dy(x), dy(y))


@torch.no_grad()
def reconstruct(vae: Any, x01: torch.Tensor) -> torch.Tensor:
    """Encode (posterior mean) and decode ``[N,3,H,W]`` in [0,1]; H, W multiples of 4."""
    z = vae.encode(x01 * 2 - 1).latent_dist.mean
    return (vae.decode(z).sample.clamp(-1, 1) + 1) / 2


@torch.no_grad()
def latent_std(vae: Any, crops: torch.Tensor, n: int = 512) -> float:
    """Std of posterior-mean latents over (up to) ``n`` training crops."""
    zs = [vae.encode(zdata.to_unit(crops[i:i + 64])).latent_dist.mean for i in range(0, min(n, len(crops)), 64)]
    return float(torch.cat(zs).std())


def train(out: Path, minutes: float, max_steps: int, seed: int, n_crops: int, crop: int = 32,
          batch: int = 16, lr: float = 1.5e-3, images: Sequence[np.ndarray] | None = None,
          records: Sequence[zdata.PhotoRecord] | None = None, log_every: int = 25, threads: int = 1,
          init: Path | None = None, warmup: int = 30, lf_weight: float = 0.0) -> dict[str, Any]:
    """Train and save into ``out``; returns training statistics (also written to ``out/train_stats.json``)."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    if images is None:
        zdata.ensure_opencv_doc()
        images, records = zdata.load_photos(zdata.TRAIN_FILES)
    crops = zdata.random_crops(images, n_crops, crop, seed)
    if init is not None:  # continue training from a saved folder (fresh optimiser and cosine schedule)
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(str(init), use_safetensors=True)
        vae.register_to_config(scaling_factor=1.0)
    else:
        vae = build_vae()
    vae.train()
    n_params = sum(p.numel() for p in vae.parameters())
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    budget = minutes * 60.0
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    step, hist = 0, []
    est_total = max_steps
    while step < max_steps:
        elapsed = time.time() - t0
        if elapsed > budget:
            break
        if step >= 20:  # estimate the total steps the time budget allows, for the cosine schedule
            est_total = min(max_steps, int(step * budget / max(elapsed, 1e-6)))
        frac = min(1.0, step / max(est_total, 1))
        for pg in opt.param_groups:
            pg["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac))) * min(1.0, (step + 1) / max(warmup, 1))
        idx = torch.randint(len(crops), (min(batch, len(crops)),), generator=g)
        x = zdata.to_unit(crops[idx])
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        y = vae.decode(z).sample
        l1, l2 = F.l1_loss(y, x), F.mse_loss(y, x)
        kl = post.kl().mean() / x[0].numel()
        loss = l1 + 0.5 * l2 + 0.1 * grad_l1(y, x) + 1e-6 * kl
        if lf_weight > 0:  # low-frequency (local mean colour) term against colour casts
            loss = loss + lf_weight * (F.mse_loss(F.avg_pool2d(y, 4), F.avg_pool2d(x, 4))
                                       + F.mse_loss(y.mean(dim=(2, 3)), x.mean(dim=(2, 3))))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        p = 10 * math.log10(4.0 / max(l2.item(), 1e-12))
        hist.append((l1.item(), l2.item(), kl.item(), p))
        if step % log_every == 0 or step == 1:
            m = np.mean(hist[-log_every:], axis=0)
            print(f"step {step} t={time.time() - t0:.0f}s lr={opt.param_groups[0]['lr']:.2e} "
                  f"l1={m[0]:.4f} mse={m[1]:.5f} kl={m[2]:.3f} psnr={m[3]:.2f}", flush=True)
    wall = time.time() - t0
    vae.eval()
    scale = 1.0 / max(latent_std(vae, crops), 1e-6)
    vae.register_to_config(scaling_factor=scale)
    out.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(str(out), safe_serialization=True)
    if records is not None:
        zdata.write_training_tsv(out / "training_data.tsv", records)
    last = np.mean(hist[-200:], axis=0) if hist else [float("nan")] * 4
    stats = dict(seed=seed, steps=step, wall_s=round(wall, 1), params=n_params, crop=crop, batch=batch,
                 n_crops=n_crops, lr=lr, scaling_factor=scale, final_l1=float(last[0]),
                 final_mse=float(last[1]), final_kl=float(last[2]), final_train_psnr=float(last[3]),
                 init=str(init) if init else None, lf_weight=lf_weight,
                 torch=torch.__version__)
    (out / "train_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crops", type=int, default=40000, help="size of the pre-sampled random crop pool")
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--init", type=Path, default=None, help="continue from this saved VAE folder")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--lf-weight", type=float, default=0.0, help="weight of the low-frequency colour loss")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    a = ap.parse_args(argv)
    stats = train(a.out, a.minutes, a.max_steps, a.seed, a.crops, a.crop, a.batch, a.lr, threads=a.threads,
                  init=a.init, warmup=a.warmup, lf_weight=a.lf_weight)
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
