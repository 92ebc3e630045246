"""Invented detail: what a decoder made up, and where (``docs/hallucination.md`` defines every number).

Use it through the metric classes (the registry names them: ``invented_detail``, ``lost_detail``, ...) or
:func:`analyse`, which analyses a batch of (N, 3, H, W) output/reference tensors in [0, 1] on their device
and returns an :class:`InventedBatch` (``.result(i)`` is image i's
:class:`~qa.metrics.invented.model.InventedResult`).

How the package is laid out, from the outside in:

- :mod:`~qa.metrics.invented.metrics`: the metric classes; :mod:`~qa.metrics.invented.cache`: one analysis per
  image pair, batched per size and shared by every metric of a case group.
- :mod:`~qa.metrics.invented.model`: the method's constants, its version and the per-image result type (the
  one place the tiers and the oracle read them from).
- The method, as torch code on any device: :mod:`~qa.metrics.invented.analysis` (bands, codec cap,
  summaries; distortion, HF energy, seed std), :mod:`~qa.metrics.invented.local_fit` (the windowed least
  squares on a coarse grid), :mod:`~qa.metrics.invented.surround` (every band's surround noise model),
  :mod:`~qa.metrics.invented.fine_band` (the finest band's channel) and
  :mod:`~qa.metrics.invented.region_score` (the strongest region). They call every step through one
  dispatcher.
- :mod:`~qa.metrics.invented.dispatch`: **the dispatcher**. Each step (Gaussians, window means of products,
  interpolation, the fit's solve, residual, placement, codec cap, map, ...) runs on the compiled CPU tier when
  the kernels are on and all its tensors are float32 CPU tensors without grad (plus the layout or size that
  kernel needs), on the torch tier otherwise: everything compiled on a CPU, everything torch on a GPU.
- Two tiers, each writing every step once: :mod:`~qa.metrics.invented.tensor` (torch, any device) and
  :mod:`~qa.metrics.invented.cpu` (numba kernels, float32 CPU); the same numbers up to float32 rounding. They
  share only :mod:`~qa.metrics.invented.coefficients` (filter taps, interpolators, DCT and bicubic matrices)
  and the model, and never import each other or the method.
- :mod:`~qa.metrics.invented.oracle`: the float64 numpy definition, for tests and benchmarks only (nothing in
  the product imports it).

Sub-package names: ``tensor`` is the torch tier (a package named ``torch`` would read like the library in
every ``import torch`` inside it and confuse tools that name modules by path), ``cpu`` the compiled tier (it
only ever runs on the CPU), ``oracle`` the reference. ``tests/metrics/invented/test_package_layout.py`` checks
these rules (no import cycle, no product import of the oracle, tiers only through the dispatcher, no
single-letter module aliases).
"""

from qa.metrics.invented.analysis import InventedBatch, analyse
from qa.metrics.invented.metrics import (
    Distortion,
    HFEnergyRatio,
    HFEnergyRatioBaseline,
    InventedConsistent,
    InventedContradicting,
    InventedDetail,
    InventedDetailBaseline,
    InventedPeak,
    LatentConsistency,
    LostDetail,
    SeedVariance,
)
from qa.metrics.invented.model import METHOD_VERSION, InventedResult

__all__ = [
    "METHOD_VERSION",
    "Distortion",
    "HFEnergyRatio",
    "HFEnergyRatioBaseline",
    "InventedBatch",
    "InventedConsistent",
    "InventedContradicting",
    "InventedDetail",
    "InventedDetailBaseline",
    "InventedPeak",
    "InventedResult",
    "LatentConsistency",
    "LostDetail",
    "SeedVariance",
    "analyse",
]
