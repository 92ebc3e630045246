"""The **compiled CPU tier** of the invented-detail analysis: numba kernels for float32 CPU tensors, the same
steps as the torch tier (:mod:`qa.metrics.invented.tensor`) with the same numbers up to float32 rounding, a
fraction of the work (symmetric taps, fused passes, no intermediate full-resolution fields). On a CPU the
dispatcher (:mod:`qa.metrics.invented.dispatch`) runs these; everywhere else the torch tier.

Two layers: the ``*_kernels`` modules are the numba functions on numpy arrays (``filter_kernels``,
``interp_kernels``, ``fit_kernels``, ``codec_kernels``, ``fine_kernels``, ``pointwise_kernels``, ``map_kernels``,
``box_kernels``: the window sums of :mod:`qa.metrics.invented.regions`; their shared inner loops in ``loops``),
and :mod:`~qa.metrics.invented.cpu.passes` (filters, interpolation) and :mod:`~qa.metrics.invented.cpu.steps`
(everything else) call them with torch tensors in and out, on the threads
of :mod:`~qa.metrics.invented.cpu.threads`. The kernels compile once per machine (numba's on-disk cache, next
to each module or in ``NUMBA_CACHE_DIR``). It imports nothing from the torch tier.
"""
