"""The float64 numpy **oracle** of the invented-detail method: the definition, written as plainly as the maths
(scipy filters, one ``numpy.linalg.solve`` per pixel), slow (about 3 s per 256 px pair).

For tests and benchmarks only: the product runs :mod:`qa.metrics.invented.analysis` (torch float32), which
is tested against this. ``tests/metrics/invented/test_package_layout.py`` fails if a module outside ``tests/``
and ``benchmarks/`` imports it.

Modules: :mod:`~qa.metrics.invented.oracle.bands` (luma, the three bands, the local fit),
:mod:`~qa.metrics.invented.oracle.fine` (the finest band), :mod:`~qa.metrics.invented.oracle.codec` (the
codec cap), :mod:`~qa.metrics.invented.oracle.surround` (the surround noise model of every band),
:mod:`~qa.metrics.invented.oracle.region_map` (the map and the region score), :mod:`~qa.metrics.invented.oracle.analysis`
(the whole pair, distortion, HF energy, seed std). Images are float (H, W, 3) in [0, 1].
"""

from qa.metrics.invented.oracle.analysis import (
    distortion,
    hf_energy,
    invented_detail,
    invented_from_stats,
    seed_std_map,
)
from qa.metrics.invented.oracle.bands import luma
from qa.metrics.invented.oracle.region_map import region_map, region_score

__all__ = ["distortion", "hf_energy", "invented_detail", "invented_from_stats", "luma", "region_map", "region_score",
           "seed_std_map"]
