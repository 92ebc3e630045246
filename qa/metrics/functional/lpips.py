"""LPIPS v0.1 (Zhang et al. 2018): a network and a pure function; no weights are downloaded.

Definition (as the ``lpips`` package, ``lpips=True``, version 0.1): images in [0, 1] are mapped to [-1, 1],
then ``(x - shift) / scale`` with the package's ImageNet constants; the backbone's ReLU outputs at five depths
are unit-normalised along channels (``x / (||x|| + 1e-10)``), squared differences are weighted by the 1x1
linear heads, averaged over space and summed over depths. The spatial map upsamples each depth's map
bilinearly (align_corners=False) to the input size and sums them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: ReLU layers (exclusive end indices into torchvision's ``features``) that LPIPS taps
TAPS = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _features(net: str) -> nn.Sequential:
    import torchvision  # noqa: PLC0415

    if net == "alex":
        return torchvision.models.alexnet(weights=None).features
    if net == "vgg":  # VGG16 "D" layers without building the (large) classifier
        from torchvision.models.vgg import cfgs, make_layers  # noqa: PLC0415

        return make_layers(cfgs["D"], batch_norm=False)
    raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")


class LPIPSNet(nn.Module):
    """Backbone (torchvision AlexNet / VGG16 ``features``) plus the five v0.1 linear heads."""

    shift: torch.Tensor  # buffers: the lpips input scaling layer
    scale: torch.Tensor
    features: nn.Sequential

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.net = net
        self.features = _features(net)[: TAPS[net][-1]]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS[net])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def load_backbone(self, path: str | Path) -> None:
        """Load a torchvision AlexNet/VGG16 state dict (``features.*`` keys; others ignored), weights only."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        keep = {k: v for k, v in feats.items() if int(k.split(".")[0]) < TAPS[self.net][-1]}
        self.features.load_state_dict(keep, strict=True)

    def load_heads(self, path: str | Path) -> None:
        """Load the lpips package's v0.1 head file (``lin{i}.model.1.weight`` keys), weights only."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        for i, lin in enumerate(self.lins):
            lin.weight.copy_(state[f"lin{i}.model.1.weight"])  # type: ignore[operator]

    def layer_maps(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Per-depth distance maps (N, 1, h_i, w_i) for images (N, 3, H, W) in [0, 1]."""
        x = ((x * 2 - 1) - self.shift) / self.scale
        y = ((y * 2 - 1) - self.shift) / self.scale
        both = torch.cat([x, y])
        maps = []
        start = 0
        n = x.shape[0]
        for lin, end in zip(self.lins, TAPS[self.net], strict=True):
            both = self.features[start:end](both)
            start = end
            normed = both / (torch.sqrt(torch.sum(both * both, dim=1, keepdim=True)) + 1e-10)
            maps.append(lin((normed[:n] - normed[n:]) ** 2))
        return maps

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor, spatial: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(distance (N,), map (N, H, W) or None)."""
        maps = self.layer_maps(x, y)
        value: torch.Tensor = sum(m.mean(dim=(1, 2, 3)) for m in maps)  # type: ignore[assignment]
        if not spatial:
            return value, None
        size = x.shape[-2:]
        full: torch.Tensor = sum(F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps)  # type: ignore[assignment]
        return value, full[:, 0]
