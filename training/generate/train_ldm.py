"""Train the generate track's source model: a caption-conditioned latent diffusion transformer (LDM).

Usage::

    python -m training.generate.train_ldm --out qa/generate/weights/ldm --minutes 14 --seed 0

Data: random 64x64 crops of the Debian opencv-doc training photos (``training.zoo.data.TRAIN_FILES``; never the
reference set's photos), each photo rescaled so that a crop shows between about a quarter and all of it, with
the photo's caption (``qa.generate.text.TRAIN_CAPTIONS``). The crops are encoded once with the zoo VAE
(``latent_dist.mean * scaling_factor``: unit-std latents ``[4, 16, 16]``); the model learns x0-prediction
rectified flow on them (see :mod:`training.generate.loop`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qa.generate.nets import DiTConfig, LatentDiT, save_model
from qa.generate.text import TRAIN_CAPTIONS
from training.generate.loop import tensor_sha256, train_loop
from training.zoo import data as zdata

NATIVE = 64  # pixel side of the native image
ZOOM = (1.0, 1.4, 2.0)  # crop side / photo short side = 1 / zoom


def photo_crops(images: Sequence[np.ndarray], captions: Sequence[str], n: int, seed: int,
                size: int = NATIVE) -> tuple[torch.Tensor, list[str]]:
    """``n`` uint8 crops ``[n, 3, size, size]`` spread evenly over ``images``, with their photo's caption."""
    if len(images) != len(captions) or not images:
        raise ValueError(f"{len(images)} images for {len(captions)} captions")
    crops, caps = [], []
    for i, (img, cap) in enumerate(zip(images, captions, strict=True)):
        k = n // len(images) + (1 if i < n % len(images) else 0)
        if k == 0:
            continue
        short = min(img.shape[:2])
        scales = [size / short * z for z in ZOOM]
        crops.append(zdata.random_crops([img], k, size, seed * 1000 + i, scales))
        caps += [cap] * k
    return torch.cat(crops), caps


@torch.no_grad()
def encode_latents(vae: Any, crops: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """uint8 crops -> normalised latents ``latent_dist.mean * scaling_factor`` (float32)."""
    sf = float(vae.config.scaling_factor)
    out = [vae.encode(zdata.to_unit(crops[i:i + batch])).latent_dist.mean * sf for i in range(0, len(crops), batch)]
    return torch.cat(out).float()


def train(out: Path, minutes: float, max_steps: int, seed: int, n_crops: int, batch: int = 32, lr: float = 1e-3,
          vae: Any = None, images: Sequence[np.ndarray] | None = None, captions: Sequence[str] | None = None,
          records: Sequence[zdata.PhotoRecord] | None = None, cfg: DiTConfig | None = None,
          vae_sha256: str = "") -> dict[str, Any]:
    """Train, save into ``out`` (config.json + model.safetensors + training_data.tsv); returns the statistics.

    Without ``images`` it uses the opencv-doc training photos and their captions; without ``vae`` the zoo VAE.
    """
    t_start = time.time()
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    if vae is None:
        from qa.hashing import sha256_file
        from qa.zoo.models import WEIGHTS_NAME, ZOO_VAE_DIR, load_zoo_vae

        vae = load_zoo_vae()
        vae_sha256 = sha256_file(ZOO_VAE_DIR / WEIGHTS_NAME)
    if images is None:
        zdata.ensure_opencv_doc()
        images, records = zdata.load_photos(zdata.TRAIN_FILES)
        captions = [TRAIN_CAPTIONS[f] for f in zdata.TRAIN_FILES]
        source = f"{zdata.SOURCE}: {', '.join(zdata.TRAIN_FILES)}"
    else:
        source = "explicit arrays (smoke test; never shipped)"
    if captions is None:
        raise ValueError("captions are required with explicit images")
    crops, caps = photo_crops(images, captions, n_crops, seed)
    latents = encode_latents(vae, crops)
    model = LatentDiT(cfg or DiTConfig())
    g = torch.Generator().manual_seed(seed + 1)

    def batch_fn(step: int) -> tuple[torch.Tensor, list[str]]:
        idx = torch.randint(len(latents), (min(batch, len(latents)),), generator=g)
        return latents[idx], [caps[i] for i in idx.tolist()]

    trained, stats = train_loop(model, batch_fn, minutes, max_steps, lr, seed)
    assert isinstance(trained, LatentDiT)
    ema = trained
    info = {
        "script": "training.generate.train_ldm", "seed": seed, "batch": batch, "lr": lr, "n_crops": len(crops),
        "crop": NATIVE, "data_source": source, "captions": list(captions),
        "vae_sha256": vae_sha256, "vae_scaling_factor": float(vae.config.scaling_factor),
        "latent_std": float(latents.std()), "params": sum(p.numel() for p in ema.parameters()),
        "weights_tensor_sha256": tensor_sha256(ema), "torch": torch.__version__,
        "total_wall_s": round(time.time() - t_start, 1), **stats.summary(),
    }
    save_model(ema, out, info)
    if records is not None:
        zdata.write_training_tsv(Path(out) / "training_data.tsv", records)
    return info


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=14.0)
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crops", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    a = ap.parse_args(argv)
    info = train(a.out, a.minutes, a.max_steps, a.seed, a.crops, a.batch, a.lr)
    print(json.dumps({k: v for k, v in info.items() if k != "captions"}, indent=2))


if __name__ == "__main__":
    main()
