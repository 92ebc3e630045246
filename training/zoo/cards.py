"""Write the zoo's model cards from ``train_stats.json``, ``eval.json`` and ``training_data.tsv``.

    python -m training.zoo.cards          # (re)writes weights/vae/MODEL_CARD.md and weights/pid/MODEL_CARD.md

The prose (what worked, caveats) lives in ``weights/*/NOTES.md`` and is included verbatim.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from qa.hashing import sha256_file
from qa.zoo.models import PID_WEIGHTS_NAME, WEIGHTS_NAME, ZOO_PID_DIR, ZOO_VAE_DIR


def _read(d: Path, name: str) -> dict[str, Any]:
    p = d / name
    return json.loads(p.read_text()) if p.is_file() else {}


def _data_table(d: Path) -> str:
    p = d / "training_data.tsv"
    if not p.is_file():
        return "(training_data.tsv missing)\n"
    rows = list(csv.DictReader(p.open(), delimiter="\t"))
    lines = ["| file | size | licence |", "|---|---|---|"]
    lines += [f"| {r['file']} | {r['width']}x{r['height']} | {r['licence']} |" for r in rows]
    src = rows[0]["source"] if rows else ""
    return f"{len(rows)} photographs, source: {src}.\n\n" + "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _eval_table(ev: dict[str, Any], cols: list[tuple[str, str]]) -> str:
    out = ["| set | image | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for sname, r in ev.items():
        for img, row in r["images"].items():
            out.append(f"| {sname} | {img} | " + " | ".join(_fmt(row.get(c[0], "")) for c in cols) + " |")
        out.append(f"| **{sname}** | **mean** | " + " | ".join(f"**{_fmt(r['mean'].get(c[0], ''))}**" for c in cols)
                   + " |")
    return "\n".join(out) + "\n"


def _summary(ev: dict[str, Any]) -> str:
    lines = [f"- {k}: " + ", ".join(f"{m} {_fmt(v)}" for m, v in r["mean"].items()) for k, r in ev.items()]
    return "## Summary (means; details below)\n\n" + "\n".join(lines) + "\n\n"


def _stats(st: dict[str, Any]) -> str:
    return ("`final_*`: means over the last training steps, pixels in [-1, 1] (train PSNR uses sampled latents).\n\n"
            if "final_l1" in st else "") + "\n".join(f"- {k}: {_fmt(v)}" for k, v in st.items()) + "\n"


def vae_card(d: Path = ZOO_VAE_DIR) -> str:
    """Markdown model card of the zoo VAE."""
    cfg, st, ev = _read(d, "config.json"), _read(d, "train_stats.json"), _read(d, "eval.json")
    st1 = _read(d, "train_stats_stage1.json")
    w = d / WEIGHTS_NAME
    notes = (d / "NOTES.md").read_text() if (d / "NOTES.md").is_file() else ""
    arch = {k: cfg.get(k) for k in ("block_out_channels", "layers_per_block", "latent_channels", "norm_num_groups",
                                    "mid_block_add_attention", "scaling_factor")}
    return (
        "# qa zoo VAE (AutoencoderKL, 4x, 4 latent channels)\n\n"
        "A small KL autoencoder trained by this repository (`python -m training.zoo.train_vae`), the default `vae` "
        "decoder of the embedded zoo. Pixels in [-1, 1]; latent `[N,4,H/4,W/4]`; multiply by `scaling_factor` "
        "for unit-std latents.\n\n"
        + _summary(ev) +
        f"## Architecture\n\ndiffusers `AutoencoderKL`: `{json.dumps(arch)}`; "
        f"{st.get('params', '?')} parameters, weights file {w.stat().st_size / 1e6:.2f} MB, "
        f"sha256 `{sha256_file(w)}`.\n\n"
        + (f"## Training, stage 1 (from scratch)\n\n{_stats(st1)}\n" if st1 else "")
        + f"## Training{', stage 2 (continued from stage 1)' if st1 else ''}\n\n{_stats(st)}\n{notes}\n"
        "## Evaluation (round trip, posterior mean; 256x256 centre crops)\n\n"
        "`opencv_heldout`: opencv-doc photos held out of training (split by source image). `skimage_sklearn`: "
        "**evaluation only, never trained on**: scikit-image astronaut/coffee/chelsea and scikit-learn "
        "china/flower centre crops. `reference_sets/default`: the project's reference set (32 tiles of skimage, sklearn and "
        "matplotlib photographs; **evaluation only, never trained on**), evaluated whole. `cast` = mean R,G,B error "
        "(decode - input) in [0,1] units. Reproduce: `python -m training.zoo.evaluate --only vae`.\n\n"
        + _eval_table(ev, [("psnr", "PSNR dB"), ("ssim", "SSIM"), ("cast", "cast")])
        + f"\n## Training data\n\n{_data_table(d)}"
    )


def pid_card(d: Path = ZOO_PID_DIR) -> str:
    """Markdown model card of PiD-mini."""
    cfg, st, ev = _read(d, "config.json"), _read(d, "train_stats.json"), _read(d, "eval.json")
    w = d / PID_WEIGHTS_NAME
    notes = (d / "NOTES.md").read_text() if (d / "NOTES.md").is_file() else ""
    cols = [("bicubic_vae_psnr", "bicubic(VAE) PSNR"), ("bicubic_vae_ssim", "SSIM"), ("bicubic_vae_hf", "HF/HR")]
    for s in ("0.0", "0.5"):
        cols += [(f"pid_s{s}_psnr", f"PiD s={s} PSNR"), (f"pid_s{s}_ssim", "SSIM"), (f"pid_s{s}_hf", "HF/HR")]
    return (
        "# qa zoo PiD-mini (conditional pixel-diffusion decoder, 2x)\n\n"
        "A small conditional pixel-diffusion decoder in the spirit of NVIDIA PiD, trained by this repository "
        "(`python -m training.zoo.train_pid`) on top of the frozen zoo VAE (`../vae`). Input: the VAE latent "
        "`z [N,4,h,w]` (unscaled posterior mean) plus a degrade sigma (latent noise augmentation "
        "`z + sigma/scaling_factor * eps`); output: `[N,3,8h,8w]` in [0,1], i.e. **2x the VAE's native "
        "resolution**. The network generates only the residual over `bicubic_up2(vae.decode(z_noisy))` with a "
        "seeded 4-step DDIM-like sampler (x0-prediction, cosine schedule, fresh noise each step, eta=0.5): "
        "**stochastic** across seeds, bit-identical for one seed on CPU.\n\n"
        + _summary(ev) +
        f"## Architecture\n\n`PiDNet` config `{json.dumps(cfg)}`; {st.get('params', '?')} parameters, weights "
        f"file {w.stat().st_size / 1e6:.2f} MB, sha256 `{sha256_file(w)}`. A two-level conv UNet running at the "
        "VAE's native resolution on pixel-unshuffled inputs (noisy residual, base image, nearest-upsampled "
        "latent), FiLM conditioning on diffusion time and degrade sigma, zero-initialised output.\n\n"
        f"## Training\n\n{_stats(st)}\n{notes}\n"
        "## Evaluation (256x256 HR centre crops -> area 2x down -> VAE encode -> decode at 256x256)\n\n"
        "PSNR/SSIM against the HR crop; HF/HR = Laplacian energy of the output divided by that of the HR crop "
        "(1.0 = as much high-frequency energy as the reference). PiD numbers are means over seeds 0 and 1. "
        "`skimage_sklearn` photos and `reference_sets/default` tiles are **evaluation only, never trained on**; "
        "`opencv_heldout` photos are opencv-doc photos held out of training. Reproduce: "
        "`python -m training.zoo.evaluate --only pid`.\n\n"
        + _eval_table(ev, cols)
        + f"\n## Training data\n\n{_data_table(d)}"
    )


def main() -> None:
    """Write both cards."""
    for d, fn in ((ZOO_VAE_DIR, vae_card), (ZOO_PID_DIR, pid_card)):
        if (d / "train_stats.json").is_file():
            (d / "MODEL_CARD.md").write_text(fn(d))
            print(f"wrote {d / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
