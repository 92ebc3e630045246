"""Compiled CPU kernels (numba) for the separable passes of :mod:`qa.metrics.invented.torch_passes`.

Same numbers as the banded-matrix passes there (scipy ``reflect`` borders, ``truncate=4`` kernels, decimated
samples at ``-stride * extra, -stride * extra + stride, ...``) up to float32 rounding; what differs is the work:

- a Gaussian is symmetric, so each output adds the two inputs that share a tap before multiplying (half the
  multiplies) and reads only the ``len(kernel)`` inputs it needs (a banded block of 16 outputs multiplies
  ``stride * 15 + len(kernel)`` per output, most of them zeros);
- a decimated pass along W splits its (reflect-padded) row into ``stride`` phases first, so every tap is a
  contiguous, vectorised multiply-add;
- :func:`window_products` forms the products of the features one image row at a time, filters them along W
  into a ring of rows kept in the cache and filters the ring along H: no product plane or intermediate field
  exists in memory.

The kernels work on numpy views of contiguous float32 CPU tensors, in parallel over rows with torch's thread
count (:func:`launch`), and are compiled once per machine (numba's on-disk cache). The torch passes stay the
path for every other device and the cross-check of these kernels (``tests/invented/test_torch_kernels.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np
import torch
from numba import njit, prange

from qa.metrics.invented.cpu_taps import _first_pairs, _fold, _gather, _interior, _phase_taps, _ring_taps

#: columns per work item of the H pass (:func:`blur_h`): the output chunk stays in the L1 cache
COLUMN_CHUNK = 4096
#: output rows of :func:`window_products` filtered along H together, one product after the other
OUT_ROWS = 4


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


@njit(cache=True, parallel=True)
def blur_w(x: np.ndarray, g: np.ndarray, idx: np.ndarray, stride: int, out: np.ndarray) -> None:
    """Filter every row of ``x`` (R, W) into ``out`` (R, n_out): ``out[i, j] = sum_k g[k] x[i, idx[stride j +
    k]]`` (``idx``: the reflect-extended column indices, ``stride (n_out - 1) + len(g)`` of them)."""
    n_out = out.shape[1]
    span = idx.shape[0]
    lo = _interior(idx, x.shape[1])
    for i in prange(x.shape[0]):
        ph = np.empty((stride, (span + stride - 1) // stride), dtype=np.float32)
        _gather(x[i], idx, lo, stride, ph)
        _phase_taps(ph, g, stride, n_out, out[i])


@njit(cache=True, inline="always")
def _product_row(feats: tuple, n: int, y: int, ia: np.ndarray, ib: np.ndarray, g: np.ndarray, idx: np.ndarray,
                 lo: int, stride: int, fr: np.ndarray, ph: np.ndarray, dest: np.ndarray) -> None:
    """Row ``y`` of image ``n`` of every product ``feats[ia[p]] * feats[ib[p]]`` filtered along W into ``dest``
    (P, n_out): each feature row reflect-extended (``idx``, ``lo``: see :func:`_gather`) and split into its
    phases in one pass (``fr``: (F, stride, width); ``ph``: (stride, width) scratch), the products formed phase
    by phase (contiguous, vectorised) straight into the buffer the taps read."""
    n_out = dest.shape[1]
    width = fr.shape[2]
    for f in range(len(feats)):
        _gather(feats[f][n, y], idx, lo, stride, fr[f])
    for p in range(ia.shape[0]):
        for q in range(stride):
            a = fr[ia[p], q]
            b = fr[ib[p], q]
            d = ph[q]
            for m in range(width):
                d[m] = a[m] * b[m]
        _phase_taps(ph, g, stride, n_out, dest[p])


@njit(cache=True, parallel=True)
def window_products(feats: tuple, ia: np.ndarray, ib: np.ndarray, g: np.ndarray, cols: np.ndarray,
                    rows: np.ndarray, stride: int, n_parts: int, out: np.ndarray) -> None:
    """Gaussian-window means of products, decimated along both axes: ``out[i, p, n, j] = sum_{k, l} g[k] g[l]
    f_a[n, rows[stride i + k], cols[stride j + l]] f_b[...]`` with ``a, b = ia[p], ib[p]``; ``feats``: a tuple
    of (N, H, W) arrays, ``out`` (h', P, N, w'); ``rows``/``cols``: the reflect-extended indices of each axis.

    Each of ``n_parts`` parts of the output rows (per image) runs on one thread, in order: the W-filtered
    product rows it needs are made once each into a ring of rows (a few MB, in L3), and the output rows are the
    H filter over the ring, :data:`OUT_ROWS` rows product by product (the ring rows of one product they read
    stay in L2 between them: about 5% faster than one row at a time on one thread, within the noise on two).
    No product or W-filtered plane exists in memory."""
    nf = len(feats)
    n_img = feats[0].shape[0]
    n_out_h = out.shape[0]
    n_pairs = ia.shape[0]
    n_out_w = out.shape[3]
    klen = g.shape[0]
    span = cols.shape[0]
    width = (span + stride - 1) // stride
    lo = _interior(cols, feats[0].shape[2])
    for t in prange(n_img * n_parts):
        n = t // n_parts
        part = t % n_parts
        i0 = part * n_out_h // n_parts
        i1 = (part + 1) * n_out_h // n_parts
        fr = np.empty((nf, stride, width), dtype=np.float32)
        ph = np.empty((stride, width), dtype=np.float32)
        size = klen + stride * (OUT_ROWS - 1)
        ring = np.empty((size, n_pairs, n_out_w), dtype=np.float32)
        nxt = stride * i0  # the next extended row to filter into the ring (slot: its index mod its size)
        for i in range(i0, i1, OUT_ROWS):
            base = stride * i
            n_rows = min(OUT_ROWS, i1 - i)
            while nxt < base + stride * (n_rows - 1) + klen:
                _product_row(feats, n, rows[nxt], ia, ib, g, cols, lo, stride, fr, ph, ring[nxt % size])
                nxt += 1
            for p in range(n_pairs):  # the ring rows of one product stay in L2 for the OUT_ROWS outputs
                for k in range(n_rows):
                    _ring_taps(ring, base + stride * k, p, g, out[i + k, p, n])


@njit(cache=True, inline="always")
def _row_chunk(t: int, n_rows: int, n_chunks: int, chunk: int, m_cols: int) -> tuple[int, int, int, int]:
    """Work item ``t`` of a pass over (B, n_rows, M) outputs cut into ``n_chunks`` column chunks of ``chunk``:
    (b, row, first column, end column). Rows run fastest, so consecutive items of a chunk share input rows
    in the cache."""
    b = t // (n_rows * n_chunks)
    rest = t % (n_rows * n_chunks)
    c0 = (rest // n_rows) * chunk
    return b, rest % n_rows, c0, min(c0 + chunk, m_cols)


@njit(cache=True, parallel=True)
def blur_h(x: np.ndarray, g: np.ndarray, idx: np.ndarray, stride: int, chunk: int, out: np.ndarray) -> None:
    """Filter along the middle axis: ``out[b, i] = sum_k g[k] x[b, idx[stride i + k]]`` for ``x`` (B, H, M)
    and ``out`` (B, n_out, M), in chunks of ``chunk`` columns (symmetric ``g``, odd length)."""
    nb, _, m_cols = x.shape
    n_out = out.shape[1]
    klen = g.shape[0]
    r = (klen - 1) // 2
    n_chunks = (m_cols + chunk - 1) // chunk
    for t in prange(nb * n_out * n_chunks):
        b, i, c0, c1 = _row_chunk(t, n_out, n_chunks, chunk, m_cols)
        o = out[b, i, c0:c1]
        base = stride * i
        top = base + klen - 1
        c = x[b, idx[base + r], c0:c1]
        k = _first_pairs(r)
        _fold(o, True, k, c, g[r], g, 0,
              x[b, idx[base], c0:c1] if k > 0 else c, x[b, idx[top], c0:c1] if k > 0 else c,
              x[b, idx[base + 1], c0:c1] if k > 1 else c, x[b, idx[top - 1], c0:c1] if k > 1 else c,
              x[b, idx[base + 2], c0:c1] if k > 2 else c, x[b, idx[top - 2], c0:c1] if k > 2 else c,
              x[b, idx[base + 3], c0:c1] if k > 3 else c, x[b, idx[top - 3], c0:c1] if k > 3 else c)
        while k < r:
            _fold(o, False, 4, c, g[r], g, k,
                  x[b, idx[base + k], c0:c1], x[b, idx[top - k], c0:c1],
                  x[b, idx[base + k + 1], c0:c1], x[b, idx[top - k - 1], c0:c1],
                  x[b, idx[base + k + 2], c0:c1], x[b, idx[top - k - 2], c0:c1],
                  x[b, idx[base + k + 3], c0:c1], x[b, idx[top - k - 3], c0:c1])
            k += 4


@njit(cache=True, inline="always")
def _up_row(row: np.ndarray, taps: np.ndarray, first: int, o: np.ndarray, buf: np.ndarray) -> None:
    """One row of :func:`upsample_w` into ``o`` (``buf``: scratch of ceil(len(o) / stride) samples)."""
    stride = taps.shape[0] + 1
    half = taps.shape[1] // 2
    n = o.shape[0]
    m = (n + stride - 1) // stride
    for i in range(m):
        o[stride * i] = row[first + i]
    s0 = first - half + 1
    for p in range(1, stride):
        src = row[s0 : s0 + m]
        t0 = taps[p - 1, 0]
        for i in range(m):
            buf[i] = t0 * src[i]
        for t in range(1, taps.shape[1]):
            src = row[s0 + t : s0 + t + m]
            tt = taps[p - 1, t]
            for i in range(m):
                buf[i] += tt * src[i]
        for i in range((n - p + stride - 1) // stride):
            o[stride * i + p] = buf[i]


@njit(cache=True, inline="always")
def _up_col(c: np.ndarray, taps: np.ndarray, first: int, y: int, o: np.ndarray) -> None:
    """Row ``y`` of :func:`upsample_h` of one (m', M) field ``c`` into ``o`` (M,), the same arithmetic: the
    H interpolation made row by row where it is needed, without the (n, M) field."""
    stride = taps.shape[0] + 1
    half = taps.shape[1] // 2
    i = y // stride
    p = y % stride
    if p == 0:
        s = c[first + i]
        for k in range(o.shape[0]):
            o[k] = s[k]
        return
    s0 = first - half + 1 + i
    s = c[s0]
    t0 = taps[p - 1, 0]
    for k in range(o.shape[0]):
        o[k] = t0 * s[k]
    for q in range(1, taps.shape[1]):
        s = c[s0 + q]
        tq = taps[p - 1, q]
        for k in range(o.shape[0]):
            o[k] += tq * s[k]


@njit(cache=True, parallel=True)
def upsample_w(c: np.ndarray, taps: np.ndarray, first: int, out: np.ndarray) -> None:
    """Interpolate every row of ``c`` (R, m') onto ``out`` (R, n): ``out[r, s i] = c[r, first + i]`` and, for
    the phases ``p = 1 .. s - 1`` (``s = len(taps) + 1``), ``out[r, s i + p] = sum_t taps[p - 1, t] c[r, first
    - half + 1 + i + t]`` (``half = taps.shape[1] // 2``), as :func:`qa.metrics.invented.torch_ops.upsample`."""
    stride = taps.shape[0] + 1
    m = (out.shape[1] + stride - 1) // stride
    for r in prange(c.shape[0]):
        buf = np.empty(m, dtype=np.float32)
        _up_row(c[r], taps, first, out[r], buf)


@njit(cache=True, parallel=True)
def upsample_h(c: np.ndarray, taps: np.ndarray, first: int, chunk: int, out: np.ndarray) -> None:
    """:func:`upsample_w` along the middle axis: ``c`` (B, m', M) -> ``out`` (B, n, M), in chunks of ``chunk``
    columns."""
    nb, n, m_cols = out.shape
    n_chunks = (m_cols + chunk - 1) // chunk
    for t in prange(nb * n * n_chunks):
        b, y, c0, c1 = _row_chunk(t, n, n_chunks, chunk, m_cols)
        _up_col(c[b, :, c0:c1], taps, first, y, out[b, y, c0:c1])


@njit(cache=True, parallel=True)
def blur2d(x: np.ndarray, g: np.ndarray, rows: np.ndarray, cols: np.ndarray, n_parts: int, out: np.ndarray) -> None:
    """Full-resolution separable filter of every (H, W) plane of ``x`` (B, H, W) into ``out``: ``out[b, i, j] =
    sum_{k, l} g[k] g[l] x[b, rows[i + k], cols[j + l]]`` (``rows``/``cols``: reflect-extended indices).

    Work items: ``n_parts`` parts of each plane's rows, each on one thread, row after row: the W-filtered rows it
    needs are made once each into a ring of ``len(g)`` rows (in the cache) and every output row is the H filter
    over the ring; the W-filtered plane never exists in memory."""
    n_planes, n_h, n_w = out.shape
    klen = g.shape[0]
    span = cols.shape[0]
    lo = _interior(cols, x.shape[2])
    for t in prange(n_planes * n_parts):
        b = t // n_parts
        part = t % n_parts
        i0 = part * n_h // n_parts
        i1 = (part + 1) * n_h // n_parts
        ph = np.empty((1, span), dtype=np.float32)
        ring = np.empty((klen, 1, n_w), dtype=np.float32)
        nxt = i0
        for i in range(i0, i1):
            while nxt < i + klen:
                _gather(x[b, rows[nxt]], cols, lo, 1, ph)
                _phase_taps(ph, g, 1, n_w, ring[nxt % klen, 0])
                nxt += 1
            _ring_taps(ring, i, 0, g, out[b, i])
