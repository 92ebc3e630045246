"""The L2P recipe: the pixel model reuses the LDM's middle blocks frozen, and learns from generated images only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qa.generate import nets
from qa.generate.nets import L2P_DIR, LDM_DIR
from training.generate.loop import flow_loss
from training.generate.train_l2p import check_frozen, generated_training_set, ldm_vae_images

from .conftest import CAPTIONS, tiny_vae


def _ldm() -> nets.LatentDiT:
    torch.manual_seed(0)
    ldm = nets.LatentDiT(nets.DiTConfig(width=32, depth=4, heads=2))
    with torch.no_grad():  # non-zero adaLN so that the blocks really act
        for p in ldm.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return ldm


def test_pixel_model_copies_and_freezes_the_middle_blocks() -> None:
    ldm = _ldm()
    pix = nets.pixel_from_latent(ldm)
    assert pix.cfg.frozen_blocks == [1, 2]  # all but the first and last of 4
    frozen = set(pix.frozen_parameter_names())
    assert any(n.startswith("blocks.1.") for n in frozen) and any(n.startswith("blocks.2.") for n in frozen)
    assert not any(n.startswith(("blocks.0.", "blocks.3.", "embed.", "head.", "decoder.")) for n in frozen)
    src = dict(ldm.named_parameters())
    for name, p in pix.named_parameters():
        assert p.requires_grad == (name not in frozen), name
        if name.startswith("blocks.") or name in frozen:
            assert torch.equal(p, src[name]), name  # copied bit for bit (shallow blocks start from the copy too)
    # the same grid: an 8x8-pixel patch covers one 2x2 latent patch of the 4x VAE
    assert pix.cfg.grid == ldm.cfg.grid and pix.cfg.patch == ldm.cfg.patch * 4


def test_a_training_step_leaves_frozen_blocks_untouched_and_without_gradient() -> None:
    ldm = _ldm()
    pix = nets.pixel_from_latent(ldm)
    before = {n: p.detach().clone() for n, p in pix.named_parameters()}
    opt = torch.optim.AdamW([p for p in pix.parameters() if p.requires_grad], lr=1e-2)
    g = torch.Generator().manual_seed(0)
    loss = flow_loss(pix, torch.rand(2, 3, 64, 64) * 2 - 1, CAPTIONS, g)
    loss.backward()
    opt.step()
    frozen = set(pix.frozen_parameter_names())
    for name, p in pix.named_parameters():
        if name in frozen:
            assert p.grad is None, name
            assert torch.equal(p, before[name]), name
    changed = [n for n, p in pix.named_parameters() if n not in frozen and not torch.equal(p, before[n])]
    assert any(n.startswith("embed.") for n in changed) and any(n.startswith("decoder.") for n in changed)
    assert check_frozen(pix, ldm)


def test_training_set_is_generated_by_ldm_and_vae_not_read_from_files(monkeypatch: pytest.MonkeyPatch) -> None:
    import PIL.Image

    import training.zoo.data as zdata

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pixel model's data pipeline read an image file")

    for mod, attr in ((PIL.Image, "open"), (zdata, "load_photos"), (zdata, "load_rgb"), (zdata, "ensure_opencv_doc")):
        monkeypatch.setattr(mod, attr, forbidden)
    ldm, vae = _ldm().eval(), tiny_vae()
    images, caps, prov = generated_training_set(ldm, vae, CAPTIONS, n=3, seed=5, steps=2)
    assert images.shape == (3, 3, 64, 64) and caps == [CAPTIONS[0], CAPTIONS[1], CAPTIONS[0]]
    assert prov["real_images_used"] == 0 and prov["data_source"].startswith("generated")
    # the very same pixels come out of the source pipeline for those prompts and seeds
    from qa.generate.text import prompt_seed

    seeds = [prompt_seed(5 * 1_000_003 + i, c) for i, c in enumerate(caps)]
    _, again = ldm_vae_images(ldm, vae, caps, seeds, steps=2)
    assert torch.equal(images, again)
    # and they depend on the LDM: another LDM gives other images
    other = nets.LatentDiT(ldm.cfg)
    other.load_state_dict({k: v + 0.1 for k, v in ldm.state_dict().items()})
    assert not torch.allclose(generated_training_set(other.eval(), vae, CAPTIONS, 3, 5, steps=2)[0], images)


def test_smoke_training_scripts_record_steps_and_sources(tiny_zoo: dict) -> None:
    root = tiny_zoo["root"]
    ldm_doc = json.loads((root / "ldm" / "config.json").read_text())
    l2p_doc = json.loads((root / "l2p" / "config.json").read_text())
    assert ldm_doc["training"]["steps"] == 2 and l2p_doc["training"]["steps"] == 2
    assert ldm_doc["training"]["data_source"].startswith("explicit arrays")
    assert l2p_doc["training"]["real_images_used"] == 0
    assert l2p_doc["training"]["frozen_identical_to_ldm"] is True
    ldm, pix = nets.load_model(root / "ldm"), nets.load_model(root / "l2p")
    assert check_frozen(pix, ldm)  # after saving and loading, too


@pytest.mark.skipif(not (L2P_DIR / "model.safetensors").is_file(), reason="shipped L2P weights not present")
def test_shipped_pixel_model_reuses_the_shipped_ldm_blocks() -> None:
    ldm, pix = nets.load_model(LDM_DIR), nets.load_model(L2P_DIR)
    assert pix.cfg.frozen_blocks and check_frozen(pix, ldm)
    doc = json.loads((Path(L2P_DIR) / "config.json").read_text())["training"]
    assert doc["real_images_used"] == 0 and doc["data_source"].startswith("generated")
    # the shallow (trained) blocks did move away from the LDM's
    shallow = [i for i in range(pix.cfg.depth) if i not in pix.cfg.frozen_blocks]
    src = dict(ldm.named_parameters())
    assert any(not torch.equal(p, src[n]) for n, p in pix.named_parameters()
               if n.startswith(tuple(f"blocks.{i}." for i in shallow)))
