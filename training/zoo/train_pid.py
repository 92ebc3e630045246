"""Train PiD-mini on top of the frozen zoo VAE.

Usage::

    python -m training.zoo.train_pid --vae qa/zoo/weights/vae --out qa/zoo/weights/pid --minutes 25 --seed 0

Pairs: HR crop ``x`` (64x64) -> ``LR = area_down2(x)`` (32x32) -> ``z = vae.encode(LR).mean`` (8x8) ->
``z_noisy = z + s / scaling_factor * eps`` with ``s ~ U[0, 0.5]`` (half of the batch uses s = 0) ->
target residual ``r = (x - bicubic_up2(vae.decode(z_noisy))) / residual_std``.  x0-prediction, MSE + L1.
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
from safetensors.torch import save_file

from qa.zoo.pid_model import PiDConfig, PiDMini, PiDNet, area_down2, cos_schedule
from training.zoo import data as zdata


@torch.no_grad()
def encode_pairs(vae: Any, crops: torch.Tensor, bs: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """HR crops uint8 ``[N,3,S,S]`` -> (HR in [-1,1], unscaled latent means of the 2x area-downsampled crops)."""
    hr = zdata.to_unit(crops)
    zs = [vae.encode(area_down2(hr[i:i + bs])).latent_dist.mean for i in range(0, len(hr), bs)]
    return hr, torch.cat(zs)


def train(vae_dir: Path, out: Path, minutes: float, max_steps: int, seed: int, n_crops: int,
          crop: int = 64, batch: int = 16, lr: float = 1e-3, images: Sequence[np.ndarray] | None = None,
          records: Sequence[zdata.PhotoRecord] | None = None, log_every: int = 25, threads: int = 1,
          cfg: PiDConfig | None = None) -> dict[str, Any]:
    """Train and save ``config.json`` + ``model.safetensors`` (+ stats, data list) into ``out``."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    if images is None:
        zdata.ensure_opencv_doc()
        images, records = zdata.load_photos(zdata.TRAIN_FILES)
    vae = AutoencoderKL.from_pretrained(str(vae_dir), use_safetensors=True).eval().requires_grad_(False)
    t_start = time.time()
    crops = zdata.random_crops(images, n_crops, crop, seed + 1)
    hr, z = encode_pairs(vae, crops)
    cfg = cfg or PiDConfig()
    model = PiDMini(PiDNet(cfg), vae)
    # residual scale measured on clean latents
    with torch.no_grad():
        r = hr[:256] - model.base_image(z[:256])
        cfg.residual_std = float(r.std())
    net = model.net
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    prep_s = time.time() - t_start
    t0, budget = time.time(), minutes * 60.0
    step, hist, est_total = 0, [], max_steps
    while step < max_steps and time.time() - t0 < budget:
        el = time.time() - t0
        if step >= 20:
            est_total = min(max_steps, int(step * budget / max(el, 1e-6)))
        frac = min(1.0, step / max(est_total, 1))
        for pg in opt.param_groups:
            pg["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac))) * min(1.0, (step + 1) / 30)
        idx = torch.randint(len(hr), (min(batch, len(hr)),), generator=g)
        x, zb = hr[idx], z[idx]
        n = len(idx)
        s = torch.rand(n, generator=g) * cfg.max_degrade_sigma
        s = torch.where(torch.rand(n, generator=g) < 0.5, torch.zeros_like(s), s)
        zn = model.degrade(zb, s, g)
        base = model.base_image(zn)
        r0 = (x - base) / cfg.residual_std
        t = torch.rand(n, generator=g)
        a, sg = cos_schedule(t)
        xt = a[:, None, None, None] * r0 + sg[:, None, None, None] * torch.randn(r0.shape, generator=g)
        pred = net(xt, base, zn * model.scaling_factor, t, s)
        loss = F.mse_loss(pred, r0) + 0.5 * F.l1_loss(pred, r0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        hist.append(loss.item())
        if step % log_every == 0 or step == 1:
            print(f"step {step} t={time.time() - t0:.0f}s lr={opt.param_groups[0]['lr']:.2e} "
                  f"loss={np.mean(hist[-log_every:]):.4f}", flush=True)
    wall = time.time() - t0
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    if records is not None:
        zdata.write_training_tsv(out / "training_data.tsv", records)
    stats = dict(seed=seed, steps=step, wall_s=round(wall, 1), prep_s=round(prep_s, 1), params=n_params,
                 crop=crop, batch=batch, n_crops=n_crops, lr=lr, residual_std=cfg.residual_std,
                 final_loss=float(np.mean(hist[-100:])) if hist else float("nan"), torch=torch.__version__)
    (out / "train_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vae", type=Path, default=Path(__file__).parent / "weights" / "vae")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crops", type=int, default=4000)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    a = ap.parse_args(argv)
    print(json.dumps(train(a.vae, a.out, a.minutes, a.max_steps, a.seed, a.crops, a.crop, a.batch, a.lr,
                           threads=a.threads),
                     indent=2))


if __name__ == "__main__":
    main()
