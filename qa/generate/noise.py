"""Seed-coupled pixel noise: the l2p pixel model's initial noise carries its source pipeline's latent noise.

The latent model starts from latent noise ``eps_z [N, 4, 16, 16]`` and the pixel model from pixel noise
``eps_x [N, 3, 64, 64]``. With independent draws, the two pipelines give unrelated samples for the same prompt
and seed and can only agree in distribution. qa's pixel model is trained on *coupled* pairs instead (reflow,
Liu et al. 2022, "Flow straight and fast"): the pixel noise of a seed is

    eps_x = L eps_z + (I - L L^T) eta,        eta ~ N(0, I) from a second generator of the same seed,

where ``L`` is a fixed linear lift with orthonormal columns: latent pixel ``(c, i, j)`` becomes a pattern on the
4x4 pixel block ``(i, j)`` (4 = the VAE's downsampling). Because ``L`` has orthonormal columns, ``eps_x`` is
exactly standard normal (a valid starting point of a pixel diffusion) and ``L^T eps_x = eps_z`` exactly: the
coarse structure of the pixel noise *is* the latent noise. Trained on (eps_x, LDM+VAE image of eps_z) pairs, the
pixel model learns the source pipeline's own noise-to-image map, so "agreement with the source for the same
prompt and seed" and "re-encoding against the source latent" become per-image measurements.

Patterns per 4x4 block (colour vector x spatial pattern, each of unit norm, mutually orthogonal):
channel 0: (1,1,1)/sqrt(3) x flat; 1: (1,0,-1)/sqrt(2) x flat; 2: (1,-2,1)/sqrt(6) x flat;
3: (1,1,1)/sqrt(3) x checkerboard. Upstream L2P draws independent pixel noise; this coupling is qa's choice for
its miniature and is recorded in the model's config (``noise = "coupled"``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

#: pixels per latent pixel (the zoo VAE's downsampling)
FACTOR = 4


def initial_noise(shape: Sequence[int], seeds: Sequence[int]) -> torch.Tensor:
    """Standard normal noise ``[len(seeds), *shape]``, row ``i`` drawn from a CPU generator seeded ``seeds[i]``."""
    rows = [torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(rows)


def _basis() -> torch.Tensor:
    """``[4, 3, 4, 4]``: the unit-norm pixel pattern of each latent channel on one 4x4 block."""
    flat = torch.full((FACTOR, FACTOR), 1.0 / FACTOR)
    yy, xx = torch.meshgrid(torch.arange(FACTOR), torch.arange(FACTOR), indexing="ij")
    checker = ((-1.0) ** (yy + xx)).float() / FACTOR
    colours = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0], [1.0, 1.0, 1.0]])
    colours = colours / colours.norm(dim=1, keepdim=True)
    spatial = torch.stack([flat, flat, flat, checker])
    return colours[:, :, None, None] * spatial[:, None]


def lift(z: torch.Tensor) -> torch.Tensor:
    """``L z``: latent-shaped ``[N, 4, h, w]`` -> pixel-shaped ``[N, 3, 4h, 4w]`` (orthonormal columns)."""
    if z.ndim != 4 or z.shape[1] != 4:
        raise ValueError(f"lift expects [N, 4, h, w], got {tuple(z.shape)}")
    basis = _basis().to(z.device, z.dtype)  # [c, rgb, 4, 4]
    n, _, h, w = z.shape
    x = torch.einsum("nchw,crpq->nrhpwq", z, basis)
    return x.reshape(n, 3, h * FACTOR, w * FACTOR)


def project(x: torch.Tensor) -> torch.Tensor:
    """``L^T x``: pixel-shaped ``[N, 3, H, W]`` (H, W multiples of 4) -> latent-shaped ``[N, 4, H/4, W/4]``."""
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[-2] % FACTOR or x.shape[-1] % FACTOR:
        raise ValueError(f"project expects [N, 3, H, W] with H, W multiples of {FACTOR}, got {tuple(x.shape)}")
    basis = _basis().to(x.device, x.dtype)
    n, _, hh, ww = x.shape
    blocks = x.reshape(n, 3, hh // FACTOR, FACTOR, ww // FACTOR, FACTOR)
    return torch.einsum("nrhpwq,crpq->nchw", blocks, basis)


def couple(eps_z: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """``L eps_z + (I - L L^T) eta``: standard normal pixel noise whose projection is exactly ``eps_z``."""
    return lift(eps_z) + eta - lift(project(eta))


def residual_seed(seed: int) -> int:
    """The seed of ``eta`` for a generator seed (sha256-derived, 63 bits; independent of ``eps_z``'s stream)."""
    digest = hashlib.sha256(f"pixel-residual\x00{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def coupled_noise(seeds: Sequence[int], latent_shape: Sequence[int] = (4, 16, 16)) -> tuple[torch.Tensor, torch.Tensor]:
    """``(eps_z [N, *latent_shape], eps_x [N, 3, 4h, 4w])`` for generator ``seeds``.

    ``eps_z`` is exactly the latent noise the LDM draws for the same seeds (:func:`initial_noise`).
    """
    eps_z = initial_noise(tuple(latent_shape), seeds)
    c, h, w = latent_shape
    eta = initial_noise((3, h * FACTOR, w * FACTOR), [residual_seed(s) for s in seeds])
    return eps_z, couple(eps_z, eta)
