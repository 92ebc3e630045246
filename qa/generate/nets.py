"""The miniature latent diffusion transformer and the L2P-style pixel model built from it.

Both are DiT-style transformers on the same 8x8 grid of tokens (for the native 64x64 image), conditioned on
``time embedding + text embedding`` through adaptive LayerNorm (scale, shift, gate per block).

* :class:`LatentDiT` (the source model): a VAE latent ``[N, 4, 16, 16]`` (normalised: ``z * scaling_factor``)
  cut into 2x2 latent patches (16 values per token) -> ``depth`` blocks -> a linear head back to latent patches.
* :class:`PixelDiT` (the L2P recipe): pixels ``[N, 3, 64, 64]`` in [-1, 1] cut into 8x8 pixel patches
  (192 values per token, the same grid, since 8 px = 2 latent px x the VAE's 4x) -> a new patch embedder ->
  the shallow first block (copied from the LDM, trained) -> the LDM's middle blocks (copied, **frozen**) -> the
  shallow last block (copied, trained) -> a new head plus a small convolutional pixel decoder (like L2P's local
  decoder). The time and text embedders are copied and frozen with the middle blocks, so the frozen blocks see
  conditioning exactly as in the LDM.

Diffusion (both): rectified flow ``x_t = (1 - t) x0 + t eps``, ``t`` in [0, 1]; the networks predict ``x0``;
sampling integrates ``dx/dt = (x_t - x0_hat) / t`` with Euler steps from ``t = 1`` to ``0`` with classifier-free
guidance on the prediction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from qa.generate.noise import project
from qa.generate.text import N_BUCKETS, tokenize

#: sampler settings of the generate track (made the l2p training images; the decoders' defaults)
GEN_STEPS = 12
GEN_CFG = 2.0

#: the shipped weights of the generate track: the LDM and the L2P-style pixel model
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
LDM_DIR = WEIGHTS_DIR / "ldm"
L2P_DIR = WEIGHTS_DIR / "l2p"

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class DiTConfig:
    """Hyper-parameters shared by the latent and pixel models (stored in ``config.json``)."""

    kind: str = "ldm"  # "ldm" | "l2p"
    in_channels: int = 4  # 4 latent channels (ldm) or 3 RGB channels (l2p)
    patch: int = 2  # latent patch (ldm) or pixel patch (l2p)
    grid: int = 8  # tokens per side
    width: int = 96
    depth: int = 6
    heads: int = 4
    n_buckets: int = N_BUCKETS
    #: l2p only: indices of the LDM blocks copied and frozen; the others are copied and trained
    frozen_blocks: list[int] = field(default_factory=list)
    #: l2p only: channels of the convolutional pixel decoder
    decoder_channels: int = 32
    decoder_features: int = 8
    #: l2p only: "independent" pixel noise, or "coupled" to the source's latent noise (:mod:`qa.generate.noise`)
    noise: str = "independent"
    #: classifier-free guidance the sampler should use by default (a reflow-trained l2p has it baked in: 1.0)
    cfg_scale: float = 2.0

    @property
    def size(self) -> int:
        """Side of the model's native input (latent side for the ldm, pixel side for l2p)."""
        return self.patch * self.grid

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding ``[grid*grid, dim]`` (no parameters)."""
    quarter = dim // 4
    freqs = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")
    parts = []
    for pos in (ys.flatten(), xs.flatten()):
        ang = pos[:, None] * freqs[None]
        parts += [ang.sin(), ang.cos()]
    return torch.cat(parts, dim=1).float()


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``[N, dim]`` of times ``t`` in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    ang = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([ang.cos(), ang.sin()], dim=1)


class TextEmbedder(nn.Module):
    """Hashed bag of words -> ``[N, width]``: learned null vector + mean of word vectors (zero-initialised)."""

    def __init__(self, n_buckets: int, width: int) -> None:
        super().__init__()
        self.n_buckets = n_buckets
        self.bag = nn.EmbeddingBag(n_buckets, width, mode="mean")
        nn.init.zeros_(self.bag.weight)
        self.null = nn.Parameter(torch.randn(width) * 0.02)

    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        ids, offsets = tokenize(captions, self.n_buckets)
        dev = self.null.device
        bags = self.bag(ids.to(dev), offsets.to(dev))  # empty bag -> zeros
        return self.null[None] + bags


class TimeEmbedder(nn.Module):
    """Time ``t`` in [0, 1] -> ``[N, width]`` (sinusoidal features then a 2-layer MLP)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_features(t, self.width))


class Block(nn.Module):
    """Transformer block with adaLN-Zero conditioning: attention and MLP, each scaled, shifted and gated."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))
        ada = nn.Linear(width, 6 * width)
        nn.init.zeros_(ada.weight)
        nn.init.zeros_(ada.bias)
        self.ada = nn.Sequential(nn.SiLU(), ada)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        s1, b1, g1, s2, b2, g2 = self.ada(c)[:, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + s1) + b1
        n, L, d = h.shape
        q, k, v = self.qkv(h).view(n, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, L, d)
        x = x + g1 * self.proj(a)
        h = self.norm2(x) * (1 + s2) + b2
        return x + g2 * self.mlp(h)


class Head(nn.Module):
    """Final adaptive LayerNorm and linear projection of each token to ``out`` values (zero-initialised)."""

    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        ada = nn.Linear(width, 2 * width)
        self.ada = nn.Sequential(nn.SiLU(), ada)
        self.linear = nn.Linear(width, out)
        for lin in (ada, self.linear):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        s, b = self.ada(c)[:, None].chunk(2, dim=-1)
        return self.linear(self.norm(x) * (1 + s) + b)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, (H/p)(W/p), C p p]``."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(n, (h // p) * (w // p), c * p * p)


def unpatchify(x: torch.Tensor, p: int, c: int, grid: int) -> torch.Tensor:
    """Inverse of :func:`patchify` for a square ``grid``."""
    n = x.shape[0]
    return x.reshape(n, grid, grid, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(n, c, grid * p, grid * p)


class DiTBase(nn.Module):
    """What both models share: embedders, blocks, position embedding, conditioning."""

    pos: torch.Tensor  # fixed position embedding [grid*grid, width] (a non-persistent buffer)

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.text = TextEmbedder(cfg.n_buckets, cfg.width)
        self.time = TimeEmbedder(cfg.width)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads) for _ in range(cfg.depth))
        self.register_buffer("pos", sincos_2d(cfg.grid, cfg.width), persistent=False)

    def condition(self, t: torch.Tensor, captions: Sequence[str]) -> torch.Tensor:
        """``[N, width]`` conditioning vector of times ``t`` and ``captions`` (empty string = null prompt)."""
        return self.time(t) + self.text(captions)

    def trunk(self, tokens: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = tokens + self.pos[None]
        for blk in self.blocks:
            x = blk(x, c)
        return x


class LatentDiT(DiTBase):
    """The source model: predicts the clean normalised latent ``[N, 4, 16, 16]`` from a noisy one."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__(cfg)
        tok = cfg.in_channels * cfg.patch * cfg.patch
        self.embed = nn.Linear(tok, cfg.width)
        self.head = Head(cfg.width, tok)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, captions: Sequence[str]) -> torch.Tensor:
        c = self.condition(t, captions)
        h = self.trunk(self.embed(patchify(x_t, self.cfg.patch)), c)
        return unpatchify(self.head(h, c), self.cfg.patch, self.cfg.in_channels, self.cfg.grid)


class PixelDiT(DiTBase):
    """The L2P-style pixel model: predicts clean pixels ``[N, 3, 64, 64]`` in [-1, 1] from noisy pixels."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__(cfg)
        tok = cfg.in_channels * cfg.patch * cfg.patch
        self.embed = nn.Linear(tok, cfg.width)
        nf, ch = cfg.decoder_features, cfg.decoder_channels
        self.head = Head(cfg.width, nf * cfg.patch * cfg.patch)
        self.decoder = nn.Sequential(
            nn.Conv2d(nf + cfg.in_channels, ch, 3, padding=1), nn.SiLU(),
            nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(),
            nn.Conv2d(ch, cfg.in_channels, 3, padding=1),
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, captions: Sequence[str]) -> torch.Tensor:
        c = self.condition(t, captions)
        h = self.trunk(self.embed(patchify(x_t, self.cfg.patch)), c)
        feats = unpatchify(self.head(h, c), self.cfg.patch, self.cfg.decoder_features, self.cfg.grid)
        return self.decoder(torch.cat([feats, x_t], dim=1))

    def frozen_parameter_names(self) -> list[str]:
        """Names of the parameters copied from the LDM and frozen (middle blocks, time and text embedders)."""
        prefixes = [f"blocks.{i}." for i in self.cfg.frozen_blocks] + ["time.", "text."]
        return [n for n, _ in self.named_parameters() if n.startswith(tuple(prefixes))]


def pixel_from_latent(ldm: LatentDiT, pixel_patch: int = 8, frozen_blocks: Sequence[int] | None = None,
                      noise: str = "independent", cfg_scale: float = 2.0) -> PixelDiT:
    """Build the pixel model from ``ldm`` by the L2P recipe.

    Copies every transformer block and the time/text embedders from ``ldm``; freezes (``requires_grad False``)
    the embedders and the middle blocks ``frozen_blocks`` (default: all but the first and the last); the pixel
    patch embedder, head and pixel decoder are new. ``pixel_patch`` must cover one LDM token (latent patch x the
    VAE's downsampling), so both models work on the same token grid. With ``noise="coupled"`` the pixel patch
    embedder starts as the LDM's embedder after the projection ``L^T`` of :mod:`qa.generate.noise`, so on pure
    coupled noise (t = 1) the trunk sees exactly the tokens the LDM sees for that seed.
    """
    if noise not in ("independent", "coupled"):
        raise ValueError(f"noise must be 'independent' or 'coupled', got {noise!r}")
    lc = ldm.cfg
    frozen = list(range(1, lc.depth - 1)) if frozen_blocks is None else sorted(int(i) for i in frozen_blocks)
    if any(i < 0 or i >= lc.depth for i in frozen):
        raise ValueError(f"frozen_blocks {frozen} out of range for depth {lc.depth}")
    cfg = DiTConfig(kind="l2p", in_channels=3, patch=pixel_patch, grid=lc.grid, width=lc.width, depth=lc.depth,
                    heads=lc.heads, n_buckets=lc.n_buckets, frozen_blocks=frozen, noise=noise,
                    cfg_scale=float(cfg_scale))
    pix = PixelDiT(cfg)
    if noise == "coupled":
        tok = cfg.in_channels * cfg.patch * cfg.patch
        eye = torch.eye(tok).reshape(tok, cfg.in_channels, cfg.patch, cfg.patch)
        proj = project(eye).reshape(tok, -1).T  # [latent token, pixel token]: patch of L^T x
        if proj.shape[0] != ldm.embed.in_features:
            raise ValueError(f"coupled noise needs {proj.shape[0]}-value latent tokens, the LDM has {ldm.embed.in_features}")
        with torch.no_grad():
            pix.embed.weight.copy_(ldm.embed.weight @ proj)
            pix.embed.bias.copy_(ldm.embed.bias)
    pix.blocks.load_state_dict(ldm.blocks.state_dict())
    pix.time.load_state_dict(ldm.time.state_dict())
    pix.text.load_state_dict(ldm.text.state_dict())
    for name, p in pix.named_parameters():
        if name in set(pix.frozen_parameter_names()):
            p.requires_grad_(False)
    return pix


def build(cfg: DiTConfig) -> LatentDiT | PixelDiT:
    """A fresh model of ``cfg.kind``."""
    if cfg.kind == "ldm":
        return LatentDiT(cfg)
    if cfg.kind == "l2p":
        return PixelDiT(cfg)
    raise ValueError(f"unknown model kind {cfg.kind!r} (expected 'ldm' or 'l2p')")


# -- sampling ---------------------------------------------------------------------------------------------------
def shifted_times(steps: int, shift: float = 1.0) -> torch.Tensor:
    """``steps + 1`` times from 1 to 0, warped by ``shift`` (SD3 style: ``s t / (1 + (s - 1) t)``)."""
    t = torch.linspace(1.0, 0.0, steps + 1)
    return shift * t / (1 + (shift - 1) * t)


@torch.no_grad()
def sample(model: LatentDiT | PixelDiT, captions: Sequence[str], noise: torch.Tensor, steps: int = 12,
           cfg_scale: float = 2.0, shift: float = 1.0) -> torch.Tensor:
    """Deterministic Euler sampler of the flow ODE from ``noise`` (``t = 1``) to ``t = 0``.

    Returns the model's native sample: a normalised latent (ldm) or pixels in about [-1, 1] (l2p), same shape
    as ``noise``. ``cfg_scale`` 1 disables guidance; otherwise ``x0 = uncond + cfg_scale (cond - uncond)``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = noise.shape[0]
    if len(captions) != n:
        raise ValueError(f"{len(captions)} captions for {n} noise samples")
    x = noise
    ts = shifted_times(steps, shift).to(noise.device)
    caps = list(captions)
    for i in range(steps):
        t, t_next = ts[i], ts[i + 1]
        tt = torch.full((n,), float(t), device=noise.device)
        if cfg_scale == 1.0:
            x0 = model(x, tt, caps)
        else:
            both = model(torch.cat([x, x]), torch.cat([tt, tt]), caps + [""] * n)
            cond, unc = both[:n], both[n:]
            x0 = unc + cfg_scale * (cond - unc)
        if float(t_next) == 0.0:
            x = x0
        else:
            x = x0 + (t_next / t) * (x - x0)  # Euler step of dx/dt = (x - x0)/t, exact for constant x0
    return x


# -- storage ----------------------------------------------------------------------------------------------------
def save_model(model: LatentDiT | PixelDiT, folder: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` (+ ``extra`` under ``"training"``) and ``model.safetensors`` into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"model": model.cfg.to_dict(), "training": extra or {}}
    (folder / CONFIG_NAME).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME))
    return folder / WEIGHTS_NAME


def read_config(folder: Path) -> dict[str, Any]:
    """The stored ``config.json`` of a model folder (``{"model": ..., "training": ...}``)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"generate-track model config not found: {path}")
    try:
        doc = json.loads(path.read_text())
        DiTConfig(**doc["model"])
    except Exception as exc:
        raise ValueError(f"bad generate-track model config {path}: {exc}") from exc
    return doc


def load_model(folder: Path, device: str | torch.device = "cpu") -> LatentDiT | PixelDiT:
    """Load a model folder written by :func:`save_model`, in eval mode with gradients off."""
    from qa.zoo.models import read_safetensors

    doc = read_config(folder)
    model = build(DiTConfig(**doc["model"]))
    state = read_safetensors(Path(folder) / WEIGHTS_NAME)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{Path(folder) / WEIGHTS_NAME} does not match {Path(folder) / CONFIG_NAME}: {exc}") from exc
    return model.to(device).eval().requires_grad_(False)
