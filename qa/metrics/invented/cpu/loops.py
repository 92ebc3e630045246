"""The inner loops of the compiled filters (numba, inlined into the kernels that call them): the
reflect-extended row split into its stride phases (:func:`gather`), the symmetric taps, up to four tap pairs
per pass over the output row (:func:`fold`), along W (:func:`phase_taps`) and along H over a ring of
W-filtered rows (:func:`ring_taps`), and the work items of a pass over rows and column chunks
(:func:`row_chunk`)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def interior(idx: np.ndarray, n: int) -> int:
    """Where the reflect-extended indices ``idx`` of an axis of ``n`` samples run through the axis itself:
    ``lo`` with ``idx[lo + k] == k`` for every ``k < n`` (-1 if they never do)."""
    for lo in range(idx.shape[0] - n + 1):
        if idx[lo] == 0:
            ok = True
            for k in range(n):
                if idx[lo + k] != k:
                    ok = False
                    break
            if ok:
                return lo
    return -1


@njit(cache=True, inline="always")
def gather(src: np.ndarray, idx: np.ndarray, lo: int, stride: int, ph: np.ndarray) -> None:
    """The reflect-extended row ``src[idx]`` split into its ``stride`` phases, ``ph[q, m] = src[idx[stride m +
    q]]``, in one pass: indexed reads only across the edges (``lo``: see :func:`interior`), plain (contiguous or
    stride-2, vectorised) reads inside."""
    span = idx.shape[0]
    n = src.shape[0]
    for q in range(stride):
        d = ph[q]
        cnt = (span - q + stride - 1) // stride
        if lo < 0:
            m0, m1 = cnt, cnt
        else:
            m0 = min(cnt, max(0, (lo - q + stride - 1) // stride))
            m1 = max(m0, min(cnt, (lo + n - q + stride - 1) // stride))
        for m in range(m0):
            d[m] = src[idx[stride * m + q]]
        if stride == 1:
            for m in range(m0, m1):
                d[m] = src[m - lo]
        elif stride == 2:
            for m in range(m0, m1):
                d[m] = src[2 * m + q - lo]
        else:
            for m in range(m0, m1):
                d[m] = src[stride * m + q - lo]
        for m in range(m1, cnt):
            d[m] = src[idx[stride * m + q]]


@njit(cache=True, inline="always")
def first_pairs(r: int) -> int:
    """How many tap pairs (outermost first) go with the centre tap into the loop that writes ``o``: the rest
    is a multiple of four (a kernel of radius ``r``)."""
    rem = r % 4
    return 4 if rem == 0 and r >= 4 else rem


@njit(cache=True, inline="always")
def fold(o: np.ndarray, first: bool, pairs: int, c: np.ndarray, gc: float, g: np.ndarray, k: int,
          u0: np.ndarray, v0: np.ndarray, u1: np.ndarray, v1: np.ndarray, u2: np.ndarray, v2: np.ndarray,
          u3: np.ndarray, v3: np.ndarray) -> None:
    """One pass of a symmetric filter over ``o``: ``pairs`` (0-4) tap pairs ``g[k + i] (u_i + v_i)`` (the
    unused ``u``/``v`` may be any arrays), written with the centre tap ``gc c`` when ``first``, else added.
    Up to four pairs per pass: one read and one write of ``o`` per four pairs, where the loop is bound by loads
    and stores, not by arithmetic."""
    n = o.shape[0]
    if first:
        if pairs == 0:
            for j in range(n):
                o[j] = gc * c[j]
        elif pairs == 1:
            g0 = g[k]
            for j in range(n):
                o[j] = gc * c[j] + g0 * (u0[j] + v0[j])
        elif pairs == 2:
            g0, g1 = g[k], g[k + 1]
            for j in range(n):
                o[j] = gc * c[j] + g0 * (u0[j] + v0[j]) + g1 * (u1[j] + v1[j])
        elif pairs == 3:
            g0, g1, g2 = g[k], g[k + 1], g[k + 2]
            for j in range(n):
                o[j] = gc * c[j] + g0 * (u0[j] + v0[j]) + g1 * (u1[j] + v1[j]) + g2 * (u2[j] + v2[j])
        else:
            g0, g1, g2, g3 = g[k], g[k + 1], g[k + 2], g[k + 3]
            for j in range(n):
                o[j] = (gc * c[j] + g0 * (u0[j] + v0[j]) + g1 * (u1[j] + v1[j]) + g2 * (u2[j] + v2[j])
                        + g3 * (u3[j] + v3[j]))
    else:
        g0, g1, g2, g3 = g[k], g[k + 1], g[k + 2], g[k + 3]
        for j in range(n):
            o[j] += g0 * (u0[j] + v0[j]) + g1 * (u1[j] + v1[j]) + g2 * (u2[j] + v2[j]) + g3 * (u3[j] + v3[j])


@njit(cache=True, inline="always")
def _ph(ph: np.ndarray, k: int, stride: int, n_out: int) -> np.ndarray:
    """Input samples ``stride j + k`` (``j < n_out``) of a row split into phases (:func:`gather`)."""
    return ph[k % stride, k // stride : k // stride + n_out]


@njit(cache=True, inline="always")
def phase_taps(ph: np.ndarray, g: np.ndarray, stride: int, n_out: int, o: np.ndarray) -> None:
    """``o[j] = sum_k g[k] src[stride j + k]`` for ``j < n_out`` from the phases ``ph`` of ``src`` (see
    :func:`gather`; ``g`` symmetric, odd length), up to four tap pairs per pass (:func:`fold`); taps read
    through slices (an offset inside the index would keep LLVM from vectorising the loop)."""
    klen = g.shape[0]
    r = (klen - 1) // 2
    d = klen - 1
    c = _ph(ph, r, stride, n_out)
    k = first_pairs(r)
    fold(o, True, k, c, g[r], g, 0,
          _ph(ph, 0, stride, n_out) if k > 0 else c, _ph(ph, d, stride, n_out) if k > 0 else c,
          _ph(ph, 1, stride, n_out) if k > 1 else c, _ph(ph, d - 1, stride, n_out) if k > 1 else c,
          _ph(ph, 2, stride, n_out) if k > 2 else c, _ph(ph, d - 2, stride, n_out) if k > 2 else c,
          _ph(ph, 3, stride, n_out) if k > 3 else c, _ph(ph, d - 3, stride, n_out) if k > 3 else c)
    while k < r:
        fold(o, False, 4, c, g[r], g, k,
              _ph(ph, k, stride, n_out), _ph(ph, d - k, stride, n_out),
              _ph(ph, k + 1, stride, n_out), _ph(ph, d - k - 1, stride, n_out),
              _ph(ph, k + 2, stride, n_out), _ph(ph, d - k - 2, stride, n_out),
              _ph(ph, k + 3, stride, n_out), _ph(ph, d - k - 3, stride, n_out))
        k += 4


@njit(cache=True, inline="always")
def ring_taps(ring: np.ndarray, base: int, p: int, g: np.ndarray, o: np.ndarray) -> None:
    """The H filter over a ring of W-filtered rows: ``o[j] = sum_k g[k] ring[(base + k) % len(ring), p, j]``
    (``ring`` (>= len(g), P, M); ``g`` symmetric, odd length), up to four tap pairs per pass (:func:`fold`)."""
    klen = g.shape[0]
    size = ring.shape[0]
    r = (klen - 1) // 2
    top = base + klen - 1
    c = ring[(base + r) % size, p]
    k = first_pairs(r)
    fold(o, True, k, c, g[r], g, 0,
          ring[base % size, p] if k > 0 else c, ring[top % size, p] if k > 0 else c,
          ring[(base + 1) % size, p] if k > 1 else c, ring[(top - 1) % size, p] if k > 1 else c,
          ring[(base + 2) % size, p] if k > 2 else c, ring[(top - 2) % size, p] if k > 2 else c,
          ring[(base + 3) % size, p] if k > 3 else c, ring[(top - 3) % size, p] if k > 3 else c)
    while k < r:
        fold(o, False, 4, c, g[r], g, k,
              ring[(base + k) % size, p], ring[(top - k) % size, p],
              ring[(base + k + 1) % size, p], ring[(top - k - 1) % size, p],
              ring[(base + k + 2) % size, p], ring[(top - k - 2) % size, p],
              ring[(base + k + 3) % size, p], ring[(top - k - 3) % size, p])
        k += 4


@njit(cache=True, inline="always")
def row_chunk(t: int, n_rows: int, n_chunks: int, chunk: int, m_cols: int) -> tuple[int, int, int, int]:
    """Work item ``t`` of a pass over (B, n_rows, M) outputs cut into ``n_chunks`` column chunks of ``chunk``:
    (b, row, first column, end column). Rows run fastest, so consecutive items of a chunk share input rows
    in the cache."""
    b = t // (n_rows * n_chunks)
    rest = t % (n_rows * n_chunks)
    c0 = (rest // n_rows) * chunk
    return b, rest % n_rows, c0, min(c0 + chunk, m_cols)
