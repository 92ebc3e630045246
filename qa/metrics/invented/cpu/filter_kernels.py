"""Compiled CPU kernels (numba) of the separable Gaussian passes: along W, along H, both at full resolution,
and the decimated window means of products.

The same linear maps as the torch tier's banded matrices (:mod:`qa.metrics.invented.tensor.filters`: scipy
``reflect`` borders, ``truncate=4`` kernels, decimated samples at ``-stride * extra, -stride * extra + stride,
...``) up to float32 rounding; what differs is the work:

- a Gaussian is symmetric, so each output adds the two inputs that share a tap before multiplying (half the
  multiplies) and reads only the ``len(kernel)`` inputs it needs (a banded block of 16 outputs multiplies
  ``stride * 15 + len(kernel)`` per output, most of them zeros);
- a decimated pass along W splits its (reflect-padded) row into ``stride`` phases first, so every tap is a
  contiguous, vectorised multiply-add;
- :func:`window_products` forms the products of the features one image row at a time, filters them along W
  into a ring of rows kept in the cache and filters the ring along H: no product plane or intermediate field
  exists in memory.

The kernels work on numpy views of contiguous float32 arrays, in parallel over rows (threads:
:mod:`qa.metrics.invented.cpu.threads`), and are compiled once per machine (numba's on-disk cache).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qa.metrics.invented.cpu.loops import first_pairs, fold, gather, interior, phase_taps, ring_taps, row_chunk

#: columns per work item of the H pass (:func:`blur_h`): the output chunk stays in the L1 cache
COLUMN_CHUNK = 4096


#: output rows of :func:`window_products` filtered along H together, one product after the other
OUT_ROWS = 4


@njit(cache=True, parallel=True)
def blur_w(x: np.ndarray, g: np.ndarray, idx: np.ndarray, stride: int, out: np.ndarray) -> None:
    """Filter every row of ``x`` (R, W) into ``out`` (R, n_out): ``out[i, j] = sum_k g[k] x[i, idx[stride j +
    k]]`` (``idx``: the reflect-extended column indices, ``stride (n_out - 1) + len(g)`` of them)."""
    n_out = out.shape[1]
    span = idx.shape[0]
    lo = interior(idx, x.shape[1])
    for i in prange(x.shape[0]):
        ph = np.empty((stride, (span + stride - 1) // stride), dtype=np.float32)
        gather(x[i], idx, lo, stride, ph)
        phase_taps(ph, g, stride, n_out, out[i])


@njit(cache=True, inline="always")
def _product_row(feats: tuple, n: int, y: int, ia: np.ndarray, ib: np.ndarray, g: np.ndarray, idx: np.ndarray,
                 lo: int, stride: int, fr: np.ndarray, ph: np.ndarray, dest: np.ndarray) -> None:
    """Row ``y`` of image ``n`` of every product ``feats[ia[p]] * feats[ib[p]]`` (``feats[ia[p]]`` itself where
    ``ib[p] < 0``) filtered along W into ``dest`` (P, n_out): each feature row reflect-extended (``idx``, ``lo``:
    see :func:`gather`) and split into its phases in one pass (``fr``: (F, stride, width); ``ph``: (stride,
    width) scratch), the products formed phase by phase (contiguous, vectorised) straight into the buffer the
    taps read."""
    n_out = dest.shape[1]
    width = fr.shape[2]
    for f in range(len(feats)):
        gather(feats[f][n, y], idx, lo, stride, fr[f])
    for p in range(ia.shape[0]):
        if ib[p] < 0:  # the feature itself, filtered from its phases (no product)
            phase_taps(fr[ia[p]], g, stride, n_out, dest[p])
            continue
        for q in range(stride):
            a = fr[ia[p], q]
            b = fr[ib[p], q]
            d = ph[q]
            for m in range(width):
                d[m] = a[m] * b[m]
        phase_taps(ph, g, stride, n_out, dest[p])


@njit(cache=True, parallel=True)
def window_products(feats: tuple, ia: np.ndarray, ib: np.ndarray, g: np.ndarray, cols: np.ndarray,
                    rows: np.ndarray, stride: int, n_parts: int, out: np.ndarray) -> None:
    """Gaussian-window means of products, decimated along both axes: ``out[i, p, n, j] = sum_{k, l} g[k] g[l]
    f_a[n, rows[stride i + k], cols[stride j + l]] f_b[...]`` with ``a, b = ia[p], ib[p]`` (``f_b = 1`` where
    ``ib[p] < 0``: a window mean of ``f_a`` itself); ``feats``: a tuple
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
    lo = interior(cols, feats[0].shape[2])
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
                    ring_taps(ring, base + stride * k, p, g, out[i + k, p, n])


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
        b, i, c0, c1 = row_chunk(t, n_out, n_chunks, chunk, m_cols)
        o = out[b, i, c0:c1]
        base = stride * i
        top = base + klen - 1
        c = x[b, idx[base + r], c0:c1]
        k = first_pairs(r)
        fold(o, True, k, c, g[r], g, 0,
              x[b, idx[base], c0:c1] if k > 0 else c, x[b, idx[top], c0:c1] if k > 0 else c,
              x[b, idx[base + 1], c0:c1] if k > 1 else c, x[b, idx[top - 1], c0:c1] if k > 1 else c,
              x[b, idx[base + 2], c0:c1] if k > 2 else c, x[b, idx[top - 2], c0:c1] if k > 2 else c,
              x[b, idx[base + 3], c0:c1] if k > 3 else c, x[b, idx[top - 3], c0:c1] if k > 3 else c)
        while k < r:
            fold(o, False, 4, c, g[r], g, k,
                  x[b, idx[base + k], c0:c1], x[b, idx[top - k], c0:c1],
                  x[b, idx[base + k + 1], c0:c1], x[b, idx[top - k - 1], c0:c1],
                  x[b, idx[base + k + 2], c0:c1], x[b, idx[top - k - 2], c0:c1],
                  x[b, idx[base + k + 3], c0:c1], x[b, idx[top - k - 3], c0:c1])
            k += 4


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
    lo = interior(cols, x.shape[2])
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
                gather(x[b, rows[nxt]], cols, lo, 1, ph)
                phase_taps(ph, g, 1, n_w, ring[nxt % klen, 0])
                nxt += 1
            ring_taps(ring, i, 0, g, out[b, i])
