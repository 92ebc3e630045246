"""Threads of the compiled CPU tier: numba's own thread pool (workqueue), the kernels run on as many threads as
torch uses (:func:`launch`), one caller at a time, and :func:`torch_serial` for a whole analysis on the
kernels."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numba
import torch

#: numba's settings (attributes made at import time, unknown to type checkers)
_CONFIG: Any = numba.config
if _CONFIG.THREADING_LAYER == "default":
    # numba's own thread pool: its OpenMP layer would share a process with torch's OpenMP runtime, and the
    # portable pool needs no extra library (tbb)
    _CONFIG.THREADING_LAYER = "workqueue"
#: the workqueue pool runs one parallel kernel at a time: callers from several Python threads take turns
_LAUNCH = threading.Lock()


#: the kernels' thread count while :func:`torch_serial` holds torch at one thread (None: torch's count)
_threads: list[int] = []


@contextmanager
def launch() -> Iterator[None]:
    """Run the kernels inside on as many threads as torch uses (numba's setting is per calling thread), one
    caller at a time."""
    with _LAUNCH:
        n = _threads[-1] if _threads else torch.get_num_threads()
        numba.set_num_threads(max(1, min(n, _CONFIG.NUMBA_NUM_THREADS)))
        yield


@contextmanager
def torch_serial() -> Iterator[None]:
    """Inside: torch's own ops on one thread, the kernels on the threads torch had (restored on exit).

    torch's OpenMP workers spin-wait after every parallel op (libgomp's default), holding the cores the kernels'
    threads need next; with the kernels doing most of the work, the few remaining torch ops lose less on one
    thread than the spinning costs (the analysis at 2048 px, 2 threads: 1.1 s against 1.2-1.6 s, same process)."""
    n = torch.get_num_threads()
    _threads.append(_threads[-1] if _threads else n)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        _threads.pop()
        torch.set_num_threads(n)
