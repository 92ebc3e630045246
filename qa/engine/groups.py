"""Scoring groups: the cases of a shard whose samples every metric's ``prepare`` sees together.

On a CPU a group is one case (its seeds): the batched metrics gain nothing from larger batches there (see
:data:`qa.metrics.invented.cache.CPU_BATCH_PIXELS`) and a case's results are freed before the next is scored. On
another device (a GPU) consecutive cases of one output size form a group of up to :data:`DEVICE_GROUP_PIXELS`
sample pixels, so the metrics batch over the shard's images of one size (e.g. the 32 default 256 px tiles in
one analysis call) instead of a case's two seeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

T = TypeVar("T")

#: on a device other than a CPU, a group holds at most this many pixels of samples (a case's distinct seeds,
#: H x W each). What a group's scope keeps lives until the next group: about 50 bytes a pixel per analysed pair
#: on the host (the invented-detail maps, energies and change planes) and the SSIM family's planes on the
#: device, so 16 Mpx bounds it near 2.5 GB for a latent decoder's three pairs a sample: four 2048 px samples, or
#: 256 of 256 px
DEVICE_GROUP_PIXELS = 16 * 1024 * 1024


def scoring_device(metrics: Iterable[object]) -> torch.device:
    """The device the metrics score on: the first of their ``device`` attributes that is not a CPU, else the CPU
    (metrics without a device run on the CPU)."""
    for m in metrics:
        dev = getattr(m, "device", None)
        if dev is not None and torch.device(dev).type != "cpu":
            return torch.device(dev)
    return torch.device("cpu")


def group_pixels(device: torch.device) -> int:
    """The most sample pixels a scoring group holds on ``device``: 0 on a CPU (every case a group of its own)."""
    return 0 if device.type == "cpu" else DEVICE_GROUP_PIXELS


@dataclass
class Group(Generic[T]):
    """Consecutive cases scored together: ``members`` (what the shard keeps per case), their output size (H, W)
    and their samples' pixels, within ``budget`` pixels."""

    budget: int
    members: list[T] = field(default_factory=list)
    size: tuple[int, int] | None = None
    pixels: int = 0

    def takes(self, size: tuple[int, int], pixels: int) -> bool:
        """Whether a case of output ``size`` whose distinct samples hold ``pixels`` pixels joins: an empty group
        takes any case; otherwise the same size and room for all of its samples."""
        return not self.members or (size == self.size and self.pixels + pixels <= self.budget)

    def add(self, member: T, size: tuple[int, int], pixels: int) -> None:
        """Add a case (after :meth:`takes`)."""
        self.members.append(member)
        self.size, self.pixels = size, self.pixels + pixels
