"""Smoke tests: each training script runs a few steps on a few crops (never touches shipped weights)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from qa.zoo.models import load_zoo_pid, load_zoo_vae
from training.zoo import data as zdata
from training.zoo import train_pid, train_vae


def test_random_crops_seeded(ci_images: list[np.ndarray]) -> None:
    a = zdata.random_crops(ci_images, 5, 32, seed=3)
    b = zdata.random_crops(ci_images, 5, 32, seed=3)
    assert a.shape == (5, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b)


def test_curated_lists_disjoint() -> None:
    assert not set(zdata.TRAIN_FILES) & set(zdata.HELDOUT_FILES)


def test_train_vae_and_pid_smoke(tmp_path: Path, ci_images: list[np.ndarray]) -> None:
    vdir, pdir = tmp_path / "vae", tmp_path / "pid"
    recs = [zdata.PhotoRecord("camera", 512, 512, "test only", "skimage")]
    s = train_vae.train(vdir, minutes=1, max_steps=3, seed=0, n_crops=4, crop=16, batch=4,
                        images=ci_images, records=recs)
    assert s["steps"] == 3
    cfg = json.loads((vdir / "config.json").read_text())
    assert cfg["latent_channels"] == 4 and len(cfg["block_out_channels"]) == 3
    assert (vdir / "training_data.tsv").read_text().startswith("file\t")
    vae = load_zoo_vae(path=vdir)
    p = train_pid.train(vdir, pdir, minutes=1, max_steps=3, seed=0, n_crops=4, crop=32, batch=4,
                        images=ci_images, records=recs)
    assert p["steps"] == 3
    pid = load_zoo_pid(path=pdir, vae=vae)
    out = pid.sample(torch.zeros(1, 4, 2, 2), 0.1, seed=0, steps=2)
    assert out.shape == (1, 3, 16, 16)
