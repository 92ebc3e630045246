"""The FID InceptionV3 (TensorFlow 2015-12-05 graph as ported by pytorch-fid), pool3 2048-d features.

The module's ``state_dict`` has the key layout of ``pt_inception-2015-12-05-6726825d.pth`` (the file used by
pytorch-fid, torch-fidelity and torchmetrics), so the official file loads with ``torch.load(weights_only=True)``.
Input: uint8 images (N, 3, H, W). Preprocessing: resize to 299x299 with the named resizer, then (x - 128) / 128.

Resizers (part of the FID definition, so part of every cache key):

- ``tf1-bilinear``: TensorFlow 1.x ``resize_bilinear`` (align_corners=False, no half-pixel offset: source
  coordinate = dst * in / out), as the original TF FID code, torch-fidelity and torchmetrics(antialias=False).
- ``bilinear-antialias``: ``torch.nn.functional.interpolate(bilinear, antialias=True)``, torchmetrics' default.

Inference folds each BatchNorm into its convolution (same function, fewer passes over memory) and runs in
channels-last layout.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

SIZE = 299
RESIZERS = ("tf1-bilinear", "bilinear-antialias")


def _tf1_matrix(n_in: int, n_out: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n_out, n_in) interpolation matrix of TF1 bilinear resize (align_corners=False, no half-pixel)."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo.double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m[rows, lo] += 1 - frac
    m[rows, hi] += frac
    return m.to(dtype=dtype, device=device)


def resize(x: torch.Tensor, resizer: str, size: int = SIZE) -> torch.Tensor:
    """Resize float (N, 3, H, W) pixel values (0..255) to (N, 3, size, size) with the named resizer."""
    if resizer == "tf1-bilinear":
        ry = _tf1_matrix(x.shape[2], size, x.dtype, x.device)
        rx = _tf1_matrix(x.shape[3], size, x.dtype, x.device)
        return torch.matmul(torch.matmul(ry, x), rx.T)
    if resizer == "bilinear-antialias":
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    raise ValueError(f"resizer must be one of {RESIZERS}, got {resizer!r}")


class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm(eps 1e-3) + ReLU; BN is folded into the conv by :meth:`fuse`."""

    def __init__(self, cin: int, cout: int, **kw: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.fused: nn.Conv2d | None = None

    def fuse(self) -> None:
        """Fold the (eval-mode) BatchNorm into a biased conv used by forward."""
        bn, c = self.bn, self.conv
        assert bn.running_var is not None and bn.running_mean is not None  # eval-mode BatchNorm with statistics
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        f = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, bias=True)  # type: ignore[arg-type]
        f = f.to(device=c.weight.device, dtype=c.weight.dtype)
        # channels_last (NHWC) weights: oneDNN's fastest convolution layout on CPU (about 30% here)
        f.weight.data = (c.weight * scale.view(-1, 1, 1, 1)).contiguous(memory_format=torch.channels_last)
        f.bias.data = bn.bias - bn.running_mean * scale  # type: ignore[union-attr]
        f.requires_grad_(False)
        object.__setattr__(self, "fused", f)  # not a registered submodule: the state_dict stays official

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return F.relu(self.fused(x))
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _Block(nn.Module):
    """An Inception block: named conv chains run in order, a pooling branch, concatenation."""

    def __init__(self, chains: list[list[tuple[str, int, int, dict]]], pool: str) -> None:
        super().__init__()
        self.chains = []
        for chain in chains:
            names = []
            for name, cin, cout, kw in chain:
                self.add_module(name, BasicConv2d(cin, cout, **kw))
                names.append(name)
            self.chains.append(names)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for names in self.chains:
            if names[0] == "branch_pool":
                pooled = _avg3(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
                outs.append(self.branch_pool(pooled))  # type: ignore[operator]
                continue
            y = x
            split = [n for n in names if n.endswith(("a", "b")) and n[-2] in "23"]
            for n in names:
                if n in split:
                    continue
                y = getattr(self, n)(y)
            if split:  # the E blocks fork into (1x3, 3x1) at the end of a chain
                y = torch.cat([getattr(self, n)(y) for n in split], 1)
            outs.append(y)
        if self.pool == "max-s2":
            outs.append(F.max_pool2d(x, kernel_size=3, stride=2))
        return torch.cat(outs, 1)


def _k(k: int | tuple[int, int], p: int | tuple[int, int] = 0, s: int = 1) -> dict:
    return {"kernel_size": k, "padding": p, "stride": s}


def block_a(cin: int, pool_features: int) -> _Block:
    return _Block([
        [("branch1x1", cin, 64, _k(1))],
        [("branch5x5_1", cin, 48, _k(1)), ("branch5x5_2", 48, 64, _k(5, 2))],
        [("branch3x3dbl_1", cin, 64, _k(1)), ("branch3x3dbl_2", 64, 96, _k(3, 1)), ("branch3x3dbl_3", 96, 96, _k(3, 1))],
        [("branch_pool", cin, pool_features, _k(1))],
    ], "avg")


def block_b(cin: int) -> _Block:
    return _Block([
        [("branch3x3", cin, 384, _k(3, 0, 2))],
        [("branch3x3dbl_1", cin, 64, _k(1)), ("branch3x3dbl_2", 64, 96, _k(3, 1)),
         ("branch3x3dbl_3", 96, 96, _k(3, 0, 2))],
    ], "max-s2")


def block_c(cin: int, c7: int) -> _Block:
    h, v = _k((1, 7), (0, 3)), _k((7, 1), (3, 0))
    return _Block([
        [("branch1x1", cin, 192, _k(1))],
        [("branch7x7_1", cin, c7, _k(1)), ("branch7x7_2", c7, c7, h), ("branch7x7_3", c7, 192, v)],
        [("branch7x7dbl_1", cin, c7, _k(1)), ("branch7x7dbl_2", c7, c7, v), ("branch7x7dbl_3", c7, c7, h),
         ("branch7x7dbl_4", c7, c7, v), ("branch7x7dbl_5", c7, 192, h)],
        [("branch_pool", cin, 192, _k(1))],
    ], "avg")


def block_d(cin: int) -> _Block:
    return _Block([
        [("branch3x3_1", cin, 192, _k(1)), ("branch3x3_2", 192, 320, _k(3, 0, 2))],
        [("branch7x7x3_1", cin, 192, _k(1)), ("branch7x7x3_2", 192, 192, _k((1, 7), (0, 3))),
         ("branch7x7x3_3", 192, 192, _k((7, 1), (3, 0))), ("branch7x7x3_4", 192, 192, _k(3, 0, 2))],
    ], "max-s2")


def block_e(cin: int, pool: str) -> _Block:
    h, v = _k((1, 3), (0, 1)), _k((3, 1), (1, 0))
    return _Block([
        [("branch1x1", cin, 320, _k(1))],
        [("branch3x3_1", cin, 384, _k(1)), ("branch3x3_2a", 384, 384, h), ("branch3x3_2b", 384, 384, v)],
        [("branch3x3dbl_1", cin, 448, _k(1)), ("branch3x3dbl_2", 448, 384, _k(3, 1)),
         ("branch3x3dbl_3a", 384, 384, h), ("branch3x3dbl_3b", 384, 384, v)],
        [("branch_pool", cin, 192, _k(1))],
    ], pool)


class FIDInceptionV3(nn.Module):
    """InceptionV3 of the FID definition; ``forward(uint8 (N,3,H,W)) -> (N, 2048)`` pool3 features (float32)."""

    def __init__(self, resizer: str = "tf1-bilinear") -> None:
        super().__init__()
        if resizer not in RESIZERS:
            raise ValueError(f"resizer must be one of {RESIZERS}, got {resizer!r}")
        self.resizer = resizer
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = block_a(192, 32), block_a(256, 64), block_a(288, 64)
        self.Mixed_6a = block_b(288)
        self.Mixed_6b, self.Mixed_6c = block_c(768, 128), block_c(768, 160)
        self.Mixed_6d, self.Mixed_6e = block_c(768, 160), block_c(768, 192)
        self.Mixed_7a = block_d(768)
        self.Mixed_7b, self.Mixed_7c = block_e(1280, "avg"), block_e(2048, "max")
        self.fc = nn.Linear(2048, 1008)  # unused for pool3 features; kept so the official file loads strictly
        self.requires_grad_(False)
        self.eval()

    def load_weights(self, path: str | Path, device: str | torch.device = "cpu") -> FIDInceptionV3:
        """Load an official-layout state dict (``torch.load(weights_only=True)``, strict), move, fuse BN."""
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        self.to(device)
        self.fuse()
        return self

    def fuse(self) -> None:
        """Fold every BatchNorm into its conv (call after loading weights)."""
        for m in self.modules():
            if isinstance(m, BasicConv2d):
                m.fuse()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 (N, 3, H, W), got {x.dtype} {tuple(x.shape)}")
        x = resize(x.float(), self.resizer)
        x = ((x - 128) / 128).contiguous(memory_format=torch.channels_last)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def random_state_dict(seed: int = 0, calibration_images: int = 4) -> dict[str, torch.Tensor]:
    """Seeded random weights in the official layout, for tests and benchmarks (never for reported numbers).

    BatchNorm statistics are set from one batch of random images (train-mode BN, cumulative average), so the
    2048-d features are well scaled instead of vanishing through 90 random layers.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = FIDInceptionV3()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
            m.train()
    x = torch.randint(0, 256, (calibration_images, 3, 64, 64), generator=gen, dtype=torch.uint8)
    net(x)
    net.eval()
    return net.state_dict()
