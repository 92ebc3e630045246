"""Evaluate the shipped generate-track models and write ``qa/generate/weights/MODEL_CARD.md``.

Usage::

    python -m training.generate.model_card [--seeds 2] [--out qa/generate/weights/MODEL_CARD.md]

The evaluation uses the decoders themselves at native size (64x64; ldm+pid 128x128) on the LDM's training
captions and on a few held-out prompts: agreement of ``l2p`` with ``ldm+vae`` for the same prompt and seed (PSNR,
SSIM), the same against another seed's source image (what agreement "only in distribution" gives; the difference
is the ``seed_alignment`` metric), the seed scale (``ldm+vae`` against itself with another seed), re-encoding
consistency (normalised RMSE of the zoo VAE encoding of each output against the source latent), and ``ldm+pid``
against the ``ldm+vae`` image upsampled bicubically (PiD's plain-decode baseline).
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

from qa.decoders.base import DecodeBatch
from qa.decoders.l2p import L2PMiniDecoder, LDMPiDDecoder, LDMVAEDecoder
from qa.generate.nets import L2P_DIR, LDM_DIR, WEIGHTS_DIR
from qa.generate.text import TRAIN_CAPTIONS
from qa.metrics.functional.fidelity import psnr, ssim_map
from qa.metrics.invented.metrics import latent_nrmse

#: prompts that are not training captions (words partly seen, partly unseen)
HELDOUT_PROMPTS = ("a red car on a street", "a green plant on a table", "a brown dog face", "a cat on a sofa")


def _np(x: torch.Tensor) -> list[np.ndarray]:
    return [a.transpose(1, 2, 0).astype(np.float64) for a in x.detach().cpu().numpy()]


def evaluate(prompts: Sequence[str], seeds: Sequence[int]) -> dict[str, float]:
    """Mean agreement and re-encoding numbers over ``prompts`` x ``seeds`` (native size), and seconds per image."""
    l2p, src, pid = L2PMiniDecoder(), LDMVAEDecoder(name="ldm+vae"), LDMPiDDecoder(name="ldm+pid")
    ids = [f"p{i}" for i in range(len(prompts))]
    batch = DecodeBatch(ids, list(prompts), size=None)
    keys = ("psnr", "ssim", "psnr_other", "psnr_seed", "ssim_seed", "re_l2p", "re_src", "pid_psnr", "pid_ssim",
            "s_l2p", "s_src", "s_pid")
    acc: dict[str, list[float]] = {k: [] for k in keys}
    n = len(prompts)
    with torch.no_grad():
        warm = DecodeBatch(ids[:1], list(prompts[:1]), size=None)
        for dec in (src, l2p, pid):  # load the weights before timing
            dec.decode(warm, 0)
        for s in seeds:
            t0 = time.perf_counter()
            base = src.decode(batch, s)
            t1 = time.perf_counter()
            out = l2p.decode(batch, s)
            t2 = time.perf_counter()
            up = pid.decode(batch, s)
            t3 = time.perf_counter()
            acc["s_src"].append((t1 - t0) / n)
            acc["s_l2p"].append((t2 - t1) / n)
            acc["s_pid"].append((t3 - t2) / n)
            other = src.decode(batch, s + 10_000)
            z = src.source_latents(batch, s)
            assert z is not None  # the embedded source pipeline always has its latent
            base_up = pid.baseline(DecodeBatch(ids, list(prompts), size=(int(up.shape[-2]), int(up.shape[-1]))), s)  # PiD's own baseline
            assert base_up is not None
            e_l2p, e_src = l2p.encoder.encode(out), src.encoder.encode(base)
            for i, (o, b, b2, u, bu) in enumerate(zip(_np(out), _np(base), _np(other), _np(up), _np(base_up),
                                                      strict=True)):
                acc["psnr"].append(psnr(o, b))
                acc["ssim"].append(float(np.mean(ssim_map(o, b))))
                acc["psnr_other"].append(psnr(o, b2))
                acc["psnr_seed"].append(psnr(b2, b))
                acc["ssim_seed"].append(float(np.mean(ssim_map(b2, b))))
                acc["re_l2p"].append(latent_nrmse(z[i].numpy(), e_l2p[i].numpy()))
                acc["re_src"].append(latent_nrmse(z[i].numpy(), e_src[i].numpy()))
                acc["pid_psnr"].append(psnr(u, bu))
                acc["pid_ssim"].append(float(np.mean(ssim_map(u, bu))))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def render(ldm: dict[str, Any], l2p: dict[str, Any], ev_train: dict[str, float], ev_held: dict[str, float],
           n_seeds: int, eval_s: float) -> str:
    """The model card as Markdown."""
    caps = "\n".join(f"| `{f}` | {c} |" for f, c in TRAIN_CAPTIONS.items())
    row = lambda name, e: (f"| {name} | {e['psnr']:.2f} | {e['ssim']:.3f} | {e['psnr_other']:.2f} | "  # noqa: E731
                           f"**{e['psnr'] - e['psnr_other']:+.2f}** | {e['psnr_seed']:.2f} | {e['ssim_seed']:.3f} | "
                           f"{e['re_l2p']:.3f} | {e['re_src']:.3f} |")
    pid_row = lambda name, e: f"| {name} | {e['pid_psnr']:.2f} | {e['pid_ssim']:.3f} |"  # noqa: E731
    coupled = l2p.get("noise") == "coupled"
    noise_text = (
        "**coupled** (`qa.generate.noise`): the pixel noise of a seed is `L eps_z + (I - L L^T) eta`, `eps_z` the "
        "LDM's latent noise of the same seed, `L` a fixed lift with orthonormal columns (each latent pixel -> a "
        "colour/flat-or-checker pattern on its 4x4 pixel block), `eta` a second draw of that seed: exactly standard "
        "normal pixel noise whose projection `L^T` is exactly the latent noise. Training pairs keep each image's own "
        "noise (reflow of the source pipeline: no caption dropout, no flips, guidance baked in, so l2p samples with "
        "cfg 1.0); the pixel patch embedder starts as the LDM's embedder after `L^T`, so at t = 1 the trunk sees the "
        "LDM's own tokens. Upstream L2P draws independent pixel noise; the coupling is qa's choice, so that "
        "agreement with the source per prompt and seed is a measurement and not only a distribution match."
        if coupled else "independent pixel noise (fresh noise per step, 10% caption dropout, horizontal flips).")
    return f"""# Model card: the generate track's miniature LDM and L2P-style pixel model

Two small models that let the `generate` track (prompt + seed -> pixels) run offline on a CPU. They follow the
L2P recipe (TencentYoutuResearch/T2I-L2P, "L2P: Unlocking Latent Potential for Pixel Generation") at miniature
scale. They are test fixtures for qa, not image generators of any quality: 64x64 images of colour and texture
roughly in the style of the caption.

## ldm (`ldm/`): the source latent diffusion model
- DiT-style transformer, width {ldm['model_width']}, depth {ldm['model_depth']}, {ldm['model_heads']} heads, adaLN conditioning on time + text;
  {ldm['params']:,} parameters ({ldm['file_mb']:.1f} MB float32). Works on the zoo VAE's latent (4 x 16 x 16
  for a 64 x 64 image, normalised by `scaling_factor` {ldm['vae_scaling_factor']:.4f}), 2x2 latent patches -> 8x8 tokens.
- Text: hashed bag of words (1024 sha1 buckets) -> learned null vector + mean of zero-initialised word vectors
  (a prompt of unseen words conditions like the empty prompt).
- Objective: rectified flow, x0-prediction MSE, logit-normal times, 10% caption dropout (classifier-free guidance).
- Data: {ldm['n_crops']} random {ldm['crop']}x{ldm['crop']} crops (a crop shows 1/2 to all of the photo's short side) of
  the 19 Debian `opencv-doc` 4.6.0 photographs listed in `ldm/training_data.tsv` (training.zoo.data.TRAIN_FILES; never the
  reference set's skimage/sklearn/matplotlib photos), each with the caption below, encoded once by the zoo VAE
  (vae file sha256 `{ldm['vae_sha256'][:16]}...`).
- Training: seed {ldm['seed']}, {ldm['steps']} steps, batch {ldm['batch']}, AdamW lr {ldm['lr']} (warm-up, cosine), EMA 0.998,
  2 CPU threads, wall time {ldm['wall_s'] / 60:.1f} min; final loss {ldm['final_loss']:.4f}. torch {ldm['torch']}.

## l2p (`l2p/`): the pixel model built from the LDM
- Same grid and width; 8x8 pixel patches (192 values per token = one 2x2 latent patch of the 4x VAE).
- Copied from the LDM: all {ldm['model_depth']} transformer blocks, the time and text embedders. **Frozen**
  (`requires_grad False`, bit-identical to the LDM's, checked after training): blocks {l2p['frozen_blocks']} and
  the embedders ({len(l2p['frozen_parameters'])} tensors). Trained: the pixel patch embedder, the first and last
  blocks (starting from the LDM's), a new head and a 3-layer convolutional pixel decoder (like L2P's local decoder):
  {l2p['trainable_params']:,} of {l2p['params']:,} parameters ({l2p['file_mb']:.1f} MB float32).
- Data: **{l2p['n_images']} images generated by the LDM ({l2p['sampler_steps']} steps, cfg {l2p['cfg_scale']}) and decoded by the
  zoo VAE decoder alone**, `real_images_used = {l2p['real_images_used']}` (`training.generate.train_l2p.generated_training_set`,
  recorded in `l2p/config.json`). Prompts ({l2p.get('n_prompts', '?')} distinct): every other image a training caption, the others
  2-6 words of the captions' vocabulary plus 0-4 filler words no caption has (`training_prompts`); never the
  reference set's captions.
- Noise: {noise_text}
- Training: seed {l2p['seed']}, {l2p['steps']} steps, batch {l2p['batch']}, AdamW lr {l2p['lr']}, EMA 0.998,
  2 CPU threads, wall time {l2p['wall_s'] / 60:.1f} min (plus data generation); final loss {l2p['final_loss']:.4f}.

Total wall time of both training scripts (data encoding / generation included):
{(ldm['total_wall_s'] + l2p['total_wall_s']) / 60:.1f} min on the 2-core machine (2 torch threads).

## Sampling (decoders `ldm+vae`, `ldm+pid`, `l2p`)
Euler steps of the flow ODE (default 12); classifier-free guidance 2.0 for the LDM, the pixel model's own
recorded guidance for l2p ({'1.0, distilled' if coupled else '2.0'}); initial noise from CPU `torch.Generator`s seeded with
sha256(run seed, prompt): the same prompt and seed give the same image; `ldm+vae` and `ldm+pid` share the latent.
Native size 64x64 (`ldm+pid`: 128x128); the adapters resize bicubically to the requested size.
Seconds per image on this machine (2 threads, native size, mean over the evaluation): ldm+vae
{ev_train['s_src']:.3f}, l2p {ev_train['s_l2p']:.3f}, ldm+pid {ev_train['s_pid']:.3f}.

## Evaluation (`python -m training.generate.model_card`, {n_seeds} seeds per prompt, native size, {eval_s:.0f} s)
Agreement of `l2p` with its source `ldm+vae`: PSNR/SSIM against the source image of the **same** prompt and seed,
PSNR against the source image of **another** seed (what a model that agrees only in distribution gets), their
difference (the `seed_alignment` metric, dB), the seed scale (`ldm+vae` against itself with another seed) and
re-encoding (RMS of E(image) - z over std(z), z the source latent of that prompt and seed, E the zoo VAE encoder).

| prompts | PSNR same seed | SSIM same seed | PSNR other seed | alignment (dB) | seed-scale PSNR | seed-scale SSIM | re-enc. l2p | re-enc. ldm+vae |
|---|---|---|---|---|---|---|---|---|
{row("19 training captions", ev_train)}
{row(f"{len(HELDOUT_PROMPTS)} held-out prompts", ev_held)}

`ldm+pid` (PiD-mini, 4 steps, 128x128) against the `ldm+vae` image of the same latent upsampled bicubically:

| prompts | PSNR (dB) | SSIM |
|---|---|---|
{pid_row("19 training captions", ev_train)}
{pid_row(f"{len(HELDOUT_PROMPTS)} held-out prompts", ev_held)}

Held-out prompts: {", ".join(HELDOUT_PROMPTS)}.

## Limitations (read before using the numbers)
- Miniatures: 64x64, about a million parameters each, trained for minutes on 2 CPU cores from 19 photos.
  Samples are colour and texture loosely in the style of the caption, not recognisable objects.
- {'l2p reproduces its source per prompt and seed only as far as the alignment column says; the residual is what the pixel model invents or loses relative to its source, which is what the generate track measures.' if coupled else 'l2p starts from independent pixel noise: it agrees with its source only in distribution (alignment about 0 dB).'}
- The training loops are time-budgeted: the weights depend on the machine's speed and load (a bit-exact replay
  needs `--max-steps` with the recorded step counts and the same torch build and thread count).

## Captions of the training photos (written for this project by looking at the photos)
| file | caption |
|---|---|
{caps}

## Licence and provenance
- Weights: produced by this project's code (Apache-2.0) from the photos above. Debian `opencv-doc` states no
  per-image licence; the package's copyright file lists Apache-2.0 AND BSD-3-Clause. Treat the weights as test
  fixtures for qa, not for redistribution as an image model.
- Upstream L2P code is not used; its weights (zhen-nan/L2P, 6B) run only through the `upstream` backend.
- Reproduce: `python -m training.generate.train_ldm --out qa/generate/weights/ldm --minutes {ldm['wall_s'] / 60:.0f} --seed {ldm['seed']} --crops {ldm['n_crops']}`
  then `python -m training.generate.train_l2p --ldm qa/generate/weights/ldm --out qa/generate/weights/l2p --minutes {l2p['wall_s'] / 60:.0f} --seed {l2p['seed']}
  --images {l2p['n_images']} --batch {l2p['batch']} --noise {l2p.get('noise', 'independent')}`, then `python -m training.generate.model_card --seeds {n_seeds}`
  (needs the zoo VAE and PiD-mini).
"""


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR / "MODEL_CARD.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    docs = {}
    for key, folder in (("ldm", LDM_DIR), ("l2p", L2P_DIR)):
        doc = json.loads((folder / "config.json").read_text())
        info = dict(doc["training"])
        info.update({"model_width": doc["model"]["width"], "model_depth": doc["model"]["depth"],
                     "model_heads": doc["model"]["heads"],
                     "file_mb": (folder / "model.safetensors").stat().st_size / 2**20})
        docs[key] = info
    t0 = time.time()
    seeds = list(range(a.seeds))
    ev_train = evaluate(list(TRAIN_CAPTIONS.values()), seeds)
    ev_held = evaluate(list(HELDOUT_PROMPTS), seeds)
    eval_s = time.time() - t0
    a.out.write_text(render(docs["ldm"], docs["l2p"], ev_train, ev_held, len(seeds), eval_s))
    print(json.dumps({"train": ev_train, "heldout": ev_held}, indent=2))


if __name__ == "__main__":
    main()
