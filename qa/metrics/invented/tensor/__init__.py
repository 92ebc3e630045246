"""The **torch tier** of the invented-detail analysis: every step as torch operations, float32, on any device
(CPU, CUDA, ...), batched over images of one size. The dispatcher (:mod:`qa.metrics.invented.dispatch`) runs it
wherever the compiled CPU tier does not apply (every GPU; the CPU with ``dispatch.USE_KERNELS = False``, which
the tests use to compare the two tiers).

Named ``tensor`` rather than ``torch``: with absolute imports a sub-package ``torch`` would shadow nothing, but
it would read like the library in every ``import torch`` of its own modules, and tools that derive a module's
name from its path (mypy or pytest given one file) would meet a second top-level ``torch``.

Modules: :mod:`~qa.metrics.invented.tensor.filters` (Gaussians, decimated window means of products),
:mod:`~qa.metrics.invented.tensor.interp` (back to full resolution, bicubic), :mod:`~qa.metrics.invented.tensor.fit`
(the local fit's solve, residual, placement), :mod:`~qa.metrics.invented.tensor.pointwise` (luma, bands,
features, percentiles), :mod:`~qa.metrics.invented.tensor.fine` (the finest band's steps),
:mod:`~qa.metrics.invented.tensor.codec` (the codec cap), :mod:`~qa.metrics.invented.tensor.region_map` (the
map). It imports nothing from the compiled tier.
"""
