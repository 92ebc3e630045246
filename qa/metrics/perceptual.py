"""LPIPS (AlexNet / VGG16 backbones, v0.1 heads) per image, with a spatial map at the output's resolution.

Weights come from the weights store (``qa weights list``) or explicit paths; nothing is downloaded. Without its
weights the metric is unavailable, and :meth:`unavailable_reason` says which command fixes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from qa.metrics.base import ImageMetric, ImageSample, MetricValue, NotApplicable
from qa.metrics.batching import ScopedValues, batches_on, by_size, sample_pairs
from qa.metrics.functional.fidelity import check_pair
from qa.metrics.functional.lpips import LPIPSNet
from qa.weights import store

#: the smallest image side (px) each backbone's LPIPS layers accept, for both height and width; a smaller image
#: leaves a layer with no pixels (torch: "Output size is too small"). AlexNet: the 11x11 stride-4 conv (pad 2)
#: and two 3x3 stride-2 max-pools before the last taps take 31 px to 7, 3, 1 and 30 px to 6, 2, nothing. VGG16:
#: four 2x2 stride-2 max-pools before the fifth tap take 16 px to 8, 4, 2, 1 and 15 px to 7, 3, 1, nothing.
#: (Found by running :class:`~qa.metrics.functional.lpips.LPIPSNet` on every side; tests/metrics checks it.)
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16}


class _LPIPS(ImageMetric):
    """Shared implementation; subclasses set ``net`` and ``weights`` (backbone name, heads name)."""

    net = "alex"
    higher_is_better = False
    value_range = (0.0, float("inf"))
    needs = ("reference",)
    unit = ""
    #: the sample fields compared (the baseline variant: baseline and reference)
    pair = ("output", "reference")
    #: whether the value comes with its map (the baseline variant keeps none)
    with_map = True
    #: the smallest side (px) the backbone takes (:data:`LPIPS_MIN_SIDE`); smaller images are not applicable
    min_side = LPIPS_MIN_SIDE["alex"]

    def __init__(
        self, backbone_path: str | Path | None = None, heads_path: str | Path | None = None, device: str = "cpu"
    ) -> None:
        self.backbone_path = Path(backbone_path) if backbone_path else None
        self.heads_path = Path(heads_path) if heads_path else None
        self.device = torch.device(device)
        self._model: LPIPSNet | None = None
        self._batched = ScopedValues()  # (value, map) of the pairs prepare computed together

    def unavailable_reason(self) -> str | None:
        """Why LPIPS cannot run here (weights absent or wrong) plus the fix command, or None."""
        names = []
        for explicit, name in ((self.backbone_path, self.weights[0]), (self.heads_path, self.weights[1])):
            if explicit is None:
                names.append(name)
            elif not explicit.is_file():
                return f"weights file {explicit} not found; fix: {store.fix_command(name)}"
        return store.unavailable_reason(names)

    def model(self) -> LPIPSNet:
        """The network, loaded on first use (raises WeightsMissingError with the fix command)."""
        if self._model is None:
            m = LPIPSNet(self.net)
            m.load_backbone(self.backbone_path or store.require(self.weights[0]))
            m.load_heads(self.heads_path or store.require(self.weights[1]))
            self._model = m.to(self.device)
        return self._model

    def prepare(self, samples: list[ImageSample]) -> None:
        """Where the device batches (:func:`qa.metrics.batching.batches_on`: not a CPU), every pair of
        ``samples`` in one network call per image size."""
        self.prefill(samples, *self.pair, spatial=self.with_map)

    def prefill(self, samples: list[ImageSample], first: str, second: str, spatial: bool) -> None:
        """Compute the (value, map or None: ``spatial``) of every valid (``first``, ``second``) pair of
        ``samples`` in calls of one image size (at most :data:`~qa.metrics.batching.BATCH_PIXELS` per image
        slot), kept for :meth:`prefilled` while ``samples`` is the scope; nothing on a CPU."""
        self._batched.enter(samples)
        if not batches_on(self.device):
            return
        # a pair too small for the backbone stays out of the batch (it would fail the whole call): compute says why
        todo = {(id(a), id(b)): (a, b) for a, b in sample_pairs(samples, first, second)
                if min(a.shape[:2]) >= self.min_side and self._batched.get(a, b) is None}
        for group in by_size(list(todo.values())):
            values, maps = self.compute_batch([a for a, _ in group], [b for _, b in group], spatial=spatial)
            for i, (a, b) in enumerate(group):
                self._batched.put(a, b, (float(values[i]), maps[i] if maps is not None else None))

    def check_side(self, image: np.ndarray, name: str) -> None:
        """Raise :class:`NotApplicable` (naming metric ``name``) when a side of the (H, W, 3) ``image`` is under
        :attr:`min_side` px: the backbone's deeper layers would have no pixels left."""
        if min(image.shape[:2]) < self.min_side:
            raise NotApplicable(f"not applicable: {name} needs both sides >= {self.min_side} px (the {self.net} "
                                f"backbone's deepest LPIPS layer has no pixels below that), image is {image.shape[:2]}")

    def prefilled(self, a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray | None] | None:
        """The (value, map) :meth:`prefill` computed for the pair (``a``, ``b``) in this scope, or None."""
        return self._batched.get(a, b)  # type: ignore[no-any-return]

    def compute(self, sample: ImageSample) -> MetricValue:
        """LPIPS distance (0 = identical) and its (H, W) map."""
        reason = self.missing_needs(sample)
        if reason is not None or sample.reference is None:
            raise NotApplicable(reason or "not applicable: needs reference")
        check_pair(sample.output, sample.reference, self.name)
        self.check_side(sample.output, self.name)
        done = self.prefilled(sample.output, sample.reference)
        if done is not None:
            return MetricValue(done[0], map=done[1])
        value, maps = self.compute_batch([sample.output], [sample.reference], spatial=True)
        return MetricValue(float(value[0]), map=maps[0] if maps is not None else None)

    def compute_batch(
        self, outputs: list[np.ndarray], references: list[np.ndarray], spatial: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Distances (N,) for same-size (H, W, 3) [0, 1] pairs, and (H, W) float32 maps when ``spatial``;
        :class:`NotApplicable` for images with a side under :attr:`min_side` px."""
        if outputs:
            self.check_side(outputs[0], self.name)
        to_t = lambda arrs: torch.from_numpy(np.stack(arrs).astype(np.float32)).permute(0, 3, 1, 2)  # noqa: E731
        x, y = to_t(outputs).to(self.device), to_t(references).to(self.device)
        with torch.inference_mode():
            value, full = self.model()(x, y, spatial=spatial)
        maps = None
        if full is not None:
            maps = [np.clip(m, 0.0, None).astype(np.float32) for m in full.cpu().numpy()]
        return value.cpu().numpy().astype(np.float64), maps


class LPIPSAlex(_LPIPS):
    """LPIPS v0.1 with the AlexNet backbone (the common default); lower is better."""

    name = "lpips_alex"
    version = "1"
    net = "alex"
    min_side = LPIPS_MIN_SIDE["alex"]
    weights = ("alexnet", "lpips-alex-v0.1")
    description = ("LPIPS v0.1, AlexNet backbone (torchvision weights) + lpips linear heads; map at output size; "
                   "needs sides >= 31 px")


class LPIPSVGG(_LPIPS):
    """LPIPS v0.1 with the VGG16 backbone; lower is better."""

    name = "lpips_vgg"
    version = "1"
    net = "vgg"
    min_side = LPIPS_MIN_SIDE["vgg"]
    weights = ("vgg16", "lpips-vgg-v0.1")
    description = ("LPIPS v0.1, VGG16 backbone (torchvision weights) + lpips linear heads; map at output size; "
                   "needs sides >= 16 px")
