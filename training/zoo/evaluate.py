"""Evaluate the zoo models (PSNR/SSIM, high-frequency energy) for their model cards.

    python -m training.zoo.evaluate            # prints JSON, writes weights/*/eval.json

Evaluation only: the skimage/sklearn photos (and the project's reference set, if present) are never trained on.
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qa.zoo.models import ZOO_PID_DIR, ZOO_VAE_DIR, load_zoo_pid, load_zoo_vae
from qa.zoo.pid_model import area_down2, bicubic_up2
from training.zoo import data as zdata

CROP = 256


def center_crop(a: np.ndarray, size: int = CROP) -> np.ndarray:
    """Centre ``size x size`` crop of an ``HxWx3`` array."""
    h, w = a.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(a[y:y + size, x:x + size, :3])


def eval_images(root: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Evaluation sets: held-out opencv-doc photos and skimage/sklearn photos (256x256 centre crops)."""
    from skimage import data as skd
    from sklearn.datasets import load_sample_image

    sets: dict[str, dict[str, np.ndarray]] = {}
    d = zdata.data_dir(root)
    if (d / zdata.HELDOUT_FILES[0]).exists():
        sets["opencv_heldout"] = {f: center_crop(zdata.load_rgb(d / f)) for f in zdata.HELDOUT_FILES}
    sk = {f"skimage.{n}": center_crop(getattr(skd, n)()) for n in ("astronaut", "coffee", "chelsea")}
    sk.update({f"sklearn.{n}": center_crop(load_sample_image(n)) for n in ("china.jpg", "flower.jpg")})
    sets["skimage_sklearn"] = sk
    return sets


def to_t(a: np.ndarray) -> torch.Tensor:
    """uint8 ``HxWx3`` -> ``[1,3,H,W]`` in [0, 1]."""
    return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of images in [0, 1]."""
    return 10 * math.log10(1 / max(torch.mean((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).item(), 1e-12))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM (skimage, gaussian weights, colour) of ``[1,3,H,W]`` images in [0, 1]."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a[0].permute(1, 2, 0).numpy(), b[0].permute(1, 2, 0).numpy(),
                                       channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def hf_energy(a: torch.Tensor) -> float:
    """Mean squared response of a 3x3 Laplacian (luma), a high-frequency energy measure."""
    y = (0.299 * a[:, 0] + 0.587 * a[:, 1] + 0.114 * a[:, 2])[:, None]
    k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=a.dtype)[None, None]
    return float(torch.nn.functional.conv2d(y, k).pow(2).mean())


def mean_chan_err(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-channel mean difference ``a - b`` (colour cast), in [0, 1] units."""
    return [round(float(v), 4) for v in (a - b).mean(dim=(0, 2, 3))]


def _agg(rows: dict[str, dict[str, Any]], keys: list[str]) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in rows.values()])), 4) for k in keys}


@torch.no_grad()
def eval_vae(vae: Any, sets: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Round-trip (posterior mean) PSNR/SSIM/colour cast per image and per set."""
    res: dict[str, Any] = {}
    for sname, imgs in sets.items():
        rows = {}
        for n, a in imgs.items():
            x = to_t(a)
            y = (vae.decode(vae.encode(x * 2 - 1).latent_dist.mean).sample.clamp(-1, 1) + 1) / 2
            rows[n] = dict(psnr=round(psnr(y, x), 3), ssim=round(ssim(y, x), 4), cast=mean_chan_err(y, x))
        res[sname] = dict(mean=_agg(rows, ["psnr", "ssim"]), images=rows)
    return res


@torch.no_grad()
def eval_pid(vae: Any, pid: Any, sets: dict[str, dict[str, np.ndarray]], sigmas: tuple[float, ...] = (0.0, 0.5),
             seeds: tuple[int, ...] = (0, 1), steps: int = 4) -> dict[str, Any]:
    """PiD (2x) vs ``bicubic_up2(vae.decode(z))``: PSNR/SSIM against HR, HF energy relative to HR."""
    res: dict[str, Any] = {}
    for sname, imgs in sets.items():
        rows: dict[str, dict[str, Any]] = {}
        for n, a in imgs.items():
            hr = to_t(a)
            z = vae.encode(area_down2(hr * 2 - 1)).latent_dist.mean
            base = (bicubic_up2(vae.decode(z).sample.clamp(-1, 1)) + 1) / 2
            e_hr = hf_energy(hr)
            r: dict[str, Any] = dict(bicubic_vae_psnr=psnr(base, hr), bicubic_vae_ssim=ssim(base, hr),
                                     bicubic_vae_hf=hf_energy(base) / e_hr)
            for s in sigmas:
                outs = [pid.sample(z, s, seed=sd, steps=steps) for sd in seeds]
                r[f"pid_s{s}_psnr"] = float(np.mean([psnr(o, hr) for o in outs]))
                r[f"pid_s{s}_ssim"] = float(np.mean([ssim(o, hr) for o in outs]))
                r[f"pid_s{s}_hf"] = float(np.mean([hf_energy(o) for o in outs])) / e_hr
                r[f"pid_s{s}_seed_diff"] = float((outs[0] - outs[-1]).abs().mean())
            rows[n] = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
        keys = list(next(iter(rows.values())).keys())
        res[sname] = dict(mean=_agg(rows, keys), images=rows)
    return res


def reference_set_images() -> dict[str, np.ndarray] | None:
    """Tiles of the project's default reference set, if it exists (``reference_sets/default``)."""
    root = Path(__file__).resolve().parents[2] / "reference_sets" / "default"
    if not root.is_dir() or not any(root.glob("manifest.*")):
        return None
    imgs = {}
    for p in sorted(list(root.rglob("*.png")) + list(root.rglob("*.jpg"))):
        a = zdata.load_rgb(p)
        h, w = (a.shape[0] // 8) * 8, (a.shape[1] // 8) * 8
        imgs[str(p.relative_to(root))] = np.ascontiguousarray(a[:h, :w])
    return imgs or None


def main(argv: list[str] | None = None) -> None:
    """CLI: evaluate the shipped (or given) VAE and PiD and write ``eval.json`` next to the weights."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vae", type=Path, default=ZOO_VAE_DIR)
    ap.add_argument("--pid", type=Path, default=ZOO_PID_DIR)
    ap.add_argument("--only", choices=["vae", "pid", "both"], default="both")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    sets = eval_images()
    ref = reference_set_images()
    if ref:
        sets["reference_sets/default"] = ref
    vae = load_zoo_vae(path=a.vae)
    jobs: list[tuple[str, Path, Callable[[], dict[str, Any]]]] = []
    if a.only in ("vae", "both"):
        jobs.append(("vae", a.vae, lambda: eval_vae(vae, sets)))
    if a.only in ("pid", "both"):
        jobs.append(("pid", a.pid, lambda: eval_pid(vae, load_zoo_pid(path=a.pid, vae=vae), sets)))
    for name, d, fn in jobs:
        r = fn()
        (d / "eval.json").write_text(json.dumps(r, indent=1) + "\n")
        print(name, json.dumps({k: v["mean"] for k, v in r.items()}, indent=1), flush=True)


if __name__ == "__main__":
    main()
