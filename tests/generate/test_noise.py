"""Seed-coupled pixel noise: exactly standard normal, carries the LDM's latent noise, and starts the pixel model
on the LDM's own tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from qa.generate import nets
from qa.generate.noise import couple, coupled_noise, initial_noise, lift, project
from training.generate.loop import flow_loss

from .conftest import CAPTIONS


def test_lift_has_orthonormal_columns_and_project_is_its_transpose() -> None:
    z = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    x = torch.randn(3, 3, 20, 24, dtype=torch.float64)
    torch.testing.assert_close(project(lift(z)), z)  # L^T L = I
    # <L z, x> = <z, L^T x>: project is the adjoint of lift
    torch.testing.assert_close((lift(z) * x).sum(), (z * project(x)).sum())
    with pytest.raises(ValueError):
        project(torch.zeros(1, 3, 10, 10))


def test_coupled_noise_is_standard_normal_and_projects_to_the_latent_noise() -> None:
    seeds = list(range(300))
    eps_z, eps_x = coupled_noise(seeds)
    torch.testing.assert_close(eps_z, initial_noise((4, 16, 16), seeds))  # the LDM's own draw
    torch.testing.assert_close(project(eps_x), eps_z, atol=1e-5, rtol=0)
    flat = eps_x.flatten().double().numpy()
    assert abs(flat.mean()) < 0.01 and abs(flat.std() - 1) < 0.01
    assert stats.kstest(flat[::37], "norm").pvalue > 1e-3
    # pixels of one 4x4 block are uncorrelated across seeds (covariance = identity, not only unit variance)
    block = eps_x[:, :, :4, :4].reshape(len(seeds), -1).double()
    cov = (block.T @ block / len(seeds)).numpy()
    off = cov[~np.eye(len(cov), dtype=bool)]
    assert np.abs(np.diag(cov) - 1).max() < 0.35 and np.abs(off).mean() < 0.08
    # the residual part is independent of the latent part: another residual gives other pixels, same projection
    other = couple(eps_z, torch.randn(eps_x.shape))
    assert not torch.allclose(other, eps_x)
    torch.testing.assert_close(project(other), eps_z, atol=1e-5, rtol=0)


def test_coupled_pixel_model_starts_on_the_ldms_tokens() -> None:
    torch.manual_seed(0)
    ldm = nets.LatentDiT(nets.DiTConfig(width=32, depth=4, heads=2))
    pix = nets.pixel_from_latent(ldm, noise="coupled", cfg_scale=1.0)
    assert pix.cfg.noise == "coupled" and pix.cfg.cfg_scale == 1.0
    eps_z, eps_x = coupled_noise([1, 2])
    tok_pix = pix.embed(nets.patchify(eps_x, pix.cfg.patch))
    tok_ldm = ldm.embed(nets.patchify(eps_z, ldm.cfg.patch))
    torch.testing.assert_close(tok_pix, tok_ldm, atol=1e-5, rtol=1e-5)
    independent = nets.pixel_from_latent(ldm)
    assert not torch.allclose(independent.embed(nets.patchify(eps_x, 8)), tok_ldm, atol=1e-3)
    with pytest.raises(ValueError, match="noise"):
        nets.pixel_from_latent(ldm, noise="sometimes")


def test_flow_loss_uses_the_paired_noise() -> None:
    torch.manual_seed(0)
    ldm = nets.LatentDiT(nets.DiTConfig(width=32, depth=4, heads=2))
    pix = nets.pixel_from_latent(ldm, noise="coupled")
    pix.requires_grad_(False)
    x0 = torch.rand(2, 3, 64, 64) * 2 - 1
    eps = torch.randn(2, 3, 64, 64)
    a = flow_loss(pix, x0, CAPTIONS, torch.Generator().manual_seed(3), 0.0, eps)
    b = flow_loss(pix, x0, CAPTIONS, torch.Generator().manual_seed(3), 0.0, eps)
    c = flow_loss(pix, x0, CAPTIONS, torch.Generator().manual_seed(3), 0.0, -eps)
    assert a.item() == b.item() and a.item() != c.item()
    with pytest.raises(ValueError, match="differ"):
        flow_loss(pix, x0, CAPTIONS, torch.Generator(), 0.0, eps[:1])
