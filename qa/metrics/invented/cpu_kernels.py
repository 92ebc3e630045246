"""Compiled CPU kernels (numba) for the separable passes of :mod:`qa.metrics.invented.torch_passes`.

Same numbers as the banded-matrix passes there (scipy ``reflect`` borders, ``truncate=4`` kernels, decimated
samples at ``-stride * extra, -stride * extra + stride, ...``) up to float32 rounding; what differs is the work:

- a Gaussian is symmetric, so each output adds the two inputs that share a tap before multiplying (half the
  multiplies) and reads only the ``len(kernel)`` inputs it needs (a banded block of 16 outputs multiplies
  ``stride * 15 + len(kernel)`` per output, most of them zeros);
- a decimated pass along W splits its (reflect-padded) row into ``stride`` phases first, so every tap is a
  contiguous, vectorised multiply-add;
- :func:`products_w` forms the window products of the features one image row at a time in a small buffer and
  filters them along W at once: no product plane ever exists in memory.

The kernels work on numpy views of contiguous float32 CPU tensors, in parallel over rows with torch's thread
count (:func:`launch`), and are compiled once per machine (numba's on-disk cache). The torch passes stay the
path for every other device and the cross-check of these kernels (``tests/invented/test_torch_kernels.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np
import torch
from numba import njit, prange

#: columns per work item of the H pass (:func:`blur_h`): the output chunk stays in the L1 cache
COLUMN_CHUNK = 512


if numba.config.THREADING_LAYER == "default":
    # numba's own thread pool: its OpenMP layer would share a process with torch's OpenMP runtime, and the
    # portable pool needs no extra library (tbb)
    numba.config.THREADING_LAYER = "workqueue"
#: the workqueue pool runs one parallel kernel at a time: callers from several Python threads take turns
_LAUNCH = threading.Lock()


@contextmanager
def launch() -> Iterator[None]:
    """Run the kernels inside on as many threads as torch uses (numba's setting is per calling thread), one
    caller at a time."""
    with _LAUNCH:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        yield


@njit(cache=True, inline="always")
def _taps(src: np.ndarray, g: np.ndarray, stride: int, n_out: int, ph: np.ndarray, o: np.ndarray) -> None:
    """``o[j] = sum_k g[k] src[stride j + k]`` for ``j < n_out`` (``g`` symmetric, odd length); ``ph``: a
    (stride, ceil(len(src) / stride)) scratch buffer for the phases of ``src``."""
    klen = g.shape[0]
    r = (klen - 1) // 2
    n = src.shape[0]
    for q in range(stride):
        dst = ph[q]
        for m in range((n - q + stride - 1) // stride):
            dst[m] = src[stride * m + q]
    # taps read through slices (an offset inside the index would keep LLVM from vectorising the loop)
    gr = g[r]
    pr = ph[r % stride, r // stride : r // stride + n_out]
    for j in range(n_out):
        o[j] = gr * pr[j]
    for k in range(r):
        d = klen - 1 - k
        gk = g[k]
        a = ph[k % stride, k // stride : k // stride + n_out]
        b = ph[d % stride, d // stride : d // stride + n_out]
        for j in range(n_out):
            o[j] += gk * (a[j] + b[j])


@njit(cache=True, parallel=True)
def blur_w(x: np.ndarray, g: np.ndarray, idx: np.ndarray, stride: int, out: np.ndarray) -> None:
    """Filter every row of ``x`` (R, W) into ``out`` (R, n_out): ``out[i, j] = sum_k g[k] x[i, idx[stride j +
    k]]`` (``idx``: the reflect-extended column indices, ``stride (n_out - 1) + len(g)`` of them)."""
    n_out = out.shape[1]
    span = idx.shape[0]
    for i in prange(x.shape[0]):
        buf = np.empty(span, dtype=np.float32)
        ph = np.empty((stride, (span + stride - 1) // stride), dtype=np.float32)
        row = x[i]
        for m in range(span):
            buf[m] = row[idx[m]]
        _taps(buf, g, stride, n_out, ph, out[i])


@njit(cache=True, parallel=True)
def products_w(feats: tuple, ia: np.ndarray, ib: np.ndarray, g: np.ndarray, idx: np.ndarray, stride: int,
               out: np.ndarray) -> None:
    """Window products along W: ``out[y, p, n, j] = sum_k g[k] f_a[n, y, c] f_b[n, y, c]`` with ``a, b =
    ia[p], ib[p]`` and ``c = idx[stride j + k]``; ``feats``: a tuple of (N, H, W) arrays, ``out`` (H, P, N,
    n_out)."""
    nf = len(feats)
    n_img, h, _ = feats[0].shape
    n_out = out.shape[3]
    span = idx.shape[0]
    for t in prange(n_img * h):
        n = t // h
        y = t % h
        rows = np.empty((nf, span), dtype=np.float32)
        for f in range(nf):
            src = feats[f][n, y]
            dst = rows[f]
            for m in range(span):
                dst[m] = src[idx[m]]
        buf = np.empty(span, dtype=np.float32)
        ph = np.empty((stride, (span + stride - 1) // stride), dtype=np.float32)
        for p in range(ia.shape[0]):
            a = rows[ia[p]]
            b = rows[ib[p]]
            for m in range(span):
                buf[m] = a[m] * b[m]
            _taps(buf, g, stride, n_out, ph, out[y, p, n])


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
        b = t // (n_out * n_chunks)
        rest = t % (n_out * n_chunks)
        i = rest // n_chunks
        c0 = (rest % n_chunks) * chunk
        c1 = min(c0 + chunk, m_cols)
        o = out[b, i, c0:c1]
        gr = g[r]
        s = x[b, idx[stride * i + r], c0:c1]
        for c in range(c1 - c0):
            o[c] = gr * s[c]
        for k in range(r):
            gk = g[k]
            s1 = x[b, idx[stride * i + k], c0:c1]
            s2 = x[b, idx[stride * i + klen - 1 - k], c0:c1]
            for c in range(c1 - c0):
                o[c] += gk * (s1[c] + s2[c])
