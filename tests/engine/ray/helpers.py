"""Test decoders and a mergeable set metric for the Ray engine tests (registered in the driver and each actor)."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.metrics.base import ImageSample, SetMetric, SetValue

#: environment variable naming the marker file of :class:`KillOnceBicubic`
KILL_MARKER_ENV = "QA_TEST_KILL_MARKER"
#: the case whose first decode kills the worker process
KILL_CASE = "tile03"


class NoisyBicubic(BicubicDecoder):
    """A stochastic decoder: bicubic plus Gaussian noise (std 0.05) drawn from (case id, seed) only, so the
    output is a pure function of (case, seed) whatever the batch or process."""

    family = "noisy-bicubic"
    stochastic = True

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        for i, cid in enumerate(batch.case_ids):
            gen = torch.Generator().manual_seed(zlib.crc32(f"{cid}/{seed}".encode()))
            out[i] += 0.05 * torch.randn(out[i].shape, generator=gen)
        return out.clamp(0.0, 1.0)


class KillOnceBicubic(BicubicDecoder):
    """Bicubic whose process dies (``os._exit``) the first time it decodes ``tile03``: the marker file named by
    $QA_TEST_KILL_MARKER is created just before, so the retry on the restarted worker goes through."""

    family = "kill-once"
    max_batch = 1

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        marker = os.environ.get(KILL_MARKER_ENV, "")
        if KILL_CASE in batch.case_ids and marker and not Path(marker).exists():
            Path(marker).write_text(f"killed pid {os.getpid()}\n")
            os._exit(17)
        return super().decode(batch, seed)


class SetMAE(SetMetric):
    """Mean absolute pixel difference over every output of the set (a set metric without merge support)."""

    name = "test-set-mae"
    higher_is_better = False
    value_range = (0.0, 1.0)

    def __init__(self) -> None:
        self.values: list[float] = []

    def update(self, sample: ImageSample) -> None:
        if sample.reference is None:
            raise ValueError(f"{sample.case_id}: needs a reference")
        self.values.append(float(np.abs(sample.output - sample.reference).mean()))

    def compute(self) -> SetValue:
        return SetValue(float(np.mean(self.values)), n=len(self.values))

    def reset(self) -> None:
        self.values = []


class MergeableSetMAE(SetMAE):
    """:class:`SetMAE` that can be computed from per-shard states (the Ray engine's merge protocol)."""

    name = "test-set-mae-merge"

    def export_state(self) -> list[float]:
        return list(self.values)

    def merge_state(self, state: list[float]) -> None:
        self.values.extend(state)


def setup(kill_marker: str = "") -> None:
    """Register the test decoders and metrics (idempotent); arm the kill marker. Runs in every Ray actor."""
    from qa.decoders.catalog import DECODERS
    from qa.metrics.catalog import METRICS

    for name, cls in (("noisy-bicubic", NoisyBicubic), ("kill-once", KillOnceBicubic)):
        if name not in DECODERS:
            DECODERS.register(name, cls)
    for name, mcls in (("test-set-mae", SetMAE), ("test-set-mae-merge", MergeableSetMAE),
                       ("test-feature-set", FeatureSetMetric)):
        if name not in METRICS:
            METRICS.register(name, mcls)
    if kill_marker:
        os.environ[KILL_MARKER_ENV] = kill_marker


class ChannelMeans:
    """A cheap feature extractor: per-channel means of uint8 (H, W, 3) images, in [0, 1] -> (N, 3) float32."""

    name = "test-channel-means"
    sha256 = "test-channel-means-v1"
    preprocessing = "uint8-round;none"

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack([im.reshape(-1, 3).mean(0) / 255.0 for im in images]).astype(np.float32)


class FeatureSetMetric(SetMetric):
    """Mean L1 distance between output and reference features, through the feature cache (like FID); the
    detail reports the extractor's forward passes, so tests can see what the cache saved. Mergeable."""

    name = "test-feature-set"
    higher_is_better = False
    value_range = (0.0, 3.0)

    def __init__(self, store: object | None = None) -> None:
        self.store = store
        self._extractor = None
        self.reset()

    def extractor(self):  # noqa: ANN201 - a CachedExtractor
        from qa.metrics.feature_cache import CachedExtractor, FeatureCache

        if self._extractor is None:
            net = ChannelMeans()
            cache = FeatureCache(self.store, net.name, net.sha256, net.preprocessing) if self.store else None
            self._extractor = CachedExtractor(net, cache)
        return self._extractor

    def update(self, sample: ImageSample) -> None:
        from qa.metrics.feature_cache import pixels_sha256, to_uint8

        if sample.reference is None:
            raise ValueError(f"{sample.case_id}: needs a reference")
        ref_sha = sample.reference_sha256 or pixels_sha256(sample.reference)
        f = self.extractor()([pixels_sha256(sample.output), ref_sha], [to_uint8(sample.output), to_uint8(sample.reference)])
        self.values.append(float(np.abs(f[0] - f[1]).sum()))

    def compute(self) -> SetValue:
        return SetValue(float(np.mean(self.values)), n=len(self.values), detail=f"forward passes: {self.forward()}")

    def forward(self) -> int:
        return self._forward + (self.extractor().n_forward - self._forward0)

    def reset(self) -> None:
        self.values: list[float] = []
        self._forward = 0
        self._forward0 = self._extractor.n_forward if self._extractor is not None else 0

    def export_state(self) -> tuple[list[float], int]:
        return list(self.values), self.forward()

    def merge_state(self, state: tuple[list[float], int]) -> None:
        self.values.extend(state[0])
        self._forward += state[1]
