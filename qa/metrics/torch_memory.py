"""A process-wide allocator setting for the torch metrics that make many large CPU intermediates (the
invented-detail analysis, MS-SSIM): keep freed memory in the process instead of returning it to the kernel."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache

#: glibc ``mallopt`` parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: freed memory up to this many bytes stays in the process for reuse (see :func:`keep_freed_memory`)
KEEP_BYTES = 1 << 30


@lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Let glibc reuse freed CPU memory instead of returning it to the kernel (once per process; True if set).

    torch's CPU tensors come from ``malloc``; glibc serves blocks above its mmap threshold (128 KiB to 32 MiB,
    adaptive) with fresh ``mmap`` pages and unmaps them on ``free``, so every full-resolution intermediate (16
    MiB at 2048 px) is page-faulted and zeroed by the kernel again: measured here, a fresh 32 MiB ``x * x`` took
    38 ms against 5 ms into a reused buffer, and the analysis makes hundreds of such intermediates. Raising the
    mmap and trim thresholds to :data:`KEEP_BYTES` keeps up to 1 GiB of freed memory in the process for the next
    tensor. No effect (returns False) where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * KEEP_BYTES))
