"""Deprecated: the catalogues moved to :mod:`qa.decoders.catalog` (``DECODERS``) and :mod:`qa.metrics.catalog`
(``METRICS``), so that reading a metric's name no longer imports decoders and torch.

Kept only for ``tests/invented`` (item 1 of issue 28 moves those tests in another branch); delete this module
once that branch is merged and nothing imports it (``grep -rn qa.registries``).
"""

from qa.decoders.catalog import DECODERS
from qa.metrics.catalog import METRICS

__all__ = ["DECODERS", "METRICS"]
