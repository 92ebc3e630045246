"""What both training scripts share: the flow-matching loss, the time-budgeted schedule, EMA, provenance.

Loss: ``x_t = (1 - t) x0 + t eps`` with ``t = sigmoid(n)``, ``n ~ N(0, 1)`` (logit-normal, as in SD3), the
network predicts ``x0`` and the loss is the mean squared error of that prediction. A fraction ``p_uncond`` of
the captions is replaced by the empty (null) prompt so that classifier-free guidance works at sampling time.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


def flow_loss(model: nn.Module, x0: torch.Tensor, captions: Sequence[str], g: torch.Generator,
              p_uncond: float = 0.1, eps: torch.Tensor | None = None) -> torch.Tensor:
    """x0-prediction MSE at random logit-normal times; ``g`` seeds times, noise and caption dropout.

    ``eps``: the noise paired with each ``x0`` (coupled training, reflow); None draws fresh noise.
    """
    n = x0.shape[0]
    t = torch.sigmoid(torch.randn(n, generator=g))
    if eps is None:
        eps = torch.randn(x0.shape, generator=g)
    elif eps.shape != x0.shape:
        raise ValueError(f"eps {tuple(eps.shape)} and x0 {tuple(x0.shape)} differ")
    tt = t.view(-1, *([1] * (x0.ndim - 1)))
    x_t = (1 - tt) * x0 + tt * eps
    drop = torch.rand(n, generator=g) < p_uncond
    caps = ["" if d else c for d, c in zip(drop.tolist(), captions, strict=True)]
    return F.mse_loss(model(x_t, t, caps), x0)


class EMA:
    """Exponential moving average of the trainable parameters (decay warms up as ``(1+k)/(10+k)``)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.k = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.k += 1
        d = min(self.decay, (1 + self.k) / (10 + self.k))
        src = dict(model.named_parameters())
        for name, p in self.model.named_parameters():
            if src[name].requires_grad:
                p.lerp_(src[name].detach(), 1 - d)


@dataclass
class LoopStats:
    """What a training loop reports (written into the model's config and card)."""

    steps: int = 0
    wall_s: float = 0.0
    losses: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        tail = self.losses[-100:]
        return {"steps": self.steps, "wall_s": round(self.wall_s, 1),
                "final_loss": float(sum(tail) / len(tail)) if tail else float("nan")}


def train_loop(model: nn.Module, batch_fn: Callable[[int], tuple[Any, ...]], minutes: float,
               max_steps: int, lr: float, seed: int, ema_decay: float = 0.998, log_every: int = 50,
               log: Callable[[str], None] = print, p_uncond: float = 0.1) -> tuple[nn.Module, LoopStats]:
    """Train the parameters of ``model`` that require grad, for ``minutes`` or ``max_steps``, whichever first.

    ``batch_fn(step)`` returns ``(x0, captions)`` or ``(x0, captions, eps)`` (coupled noise). The learning rate warms up over 30 steps, then follows a cosine
    to 2% over the number of steps the time budget is estimated to allow. Returns the EMA model and the stats.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    ema = EMA(model, ema_decay)
    g = torch.Generator().manual_seed(seed)
    stats = LoopStats()
    budget, t0, est_total = minutes * 60.0, time.time(), max_steps
    while stats.steps < max_steps:
        elapsed = time.time() - t0
        if elapsed > budget:
            break
        if stats.steps >= 20:
            est_total = min(max_steps, int(stats.steps * budget / max(elapsed, 1e-6)))
        frac = min(1.0, stats.steps / max(est_total, 1))
        for pg in opt.param_groups:
            pg["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac))) * min(1.0, (stats.steps + 1) / 30)
        x0, caps, *paired = batch_fn(stats.steps)
        loss = flow_loss(model, x0, caps, g, p_uncond, paired[0] if paired else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(model)
        stats.steps += 1
        stats.losses.append(float(loss.detach()))
        if stats.steps % log_every == 0 or stats.steps == 1:
            tail = stats.losses[-log_every:]
            log(f"step {stats.steps} t={time.time() - t0:.0f}s lr={opt.param_groups[0]['lr']:.2e} "
                f"loss={sum(tail) / len(tail):.4f}")
    stats.wall_s = time.time() - t0
    return ema.model, stats


def tensor_sha256(module: nn.Module) -> str:
    """sha256 over a module's state dict (names and float32 bytes, sorted by name): identifies weights in memory."""
    import hashlib

    h = hashlib.sha256()
    for name, v in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(v.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()
