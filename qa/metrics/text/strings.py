"""String arithmetic of the text metrics: folding, edit distance, and which characters of a word another text
explains.

* :func:`fold` maps a string to the form in which two readings are compared: lower case, and the glyphs that
  common fonts draw alike mapped to one (``0``/``o``, ``1``/``l``/``i``/``|``/``!``, ``5``/``s``, ``2``/``z``).
  Tesseract tells those apart from context (line height, neighbouring letters), not from the pixels of the
  glyph, so a change between them is OCR noise, not a decoder drawing another letter.
* :func:`edit_distance`: Levenshtein distance between two sequences (characters or words), unit costs,
  vectorised per row (O(len(a) * len(b)) work, O(len(b)) memory).
* :func:`matched_characters`: which characters of a word an aligned reading of the reference explains.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "!": "l", "5": "s", "2": "z"})


def fold(text: str) -> str:
    """``text`` lower-cased, with look-alike glyphs mapped to one representative (see the module docstring)."""
    return text.lower().translate(_FOLD)


def counts(text: str) -> int:
    """How many letters and digits ``text`` has (what the text metrics count as characters)."""
    return sum(ch.isalnum() for ch in text)


def edit_distance(a: Sequence[object], b: Sequence[object]) -> int:
    """Levenshtein distance between sequences ``a`` and ``b`` (insertions, deletions, substitutions: cost 1).

    Row by row: ``d[i, j] = min(d[i-1, j] + 1, d[i-1, j-1] + (a[i] != b[j]), d[i, j-1] + 1)``; the last term
    is resolved for a whole row at once as a running minimum of ``t[k] - k`` plus ``j``."""
    if not a:
        return len(b)
    if not b:
        return len(a)
    codes: dict[object, int] = {}
    ia = np.array([codes.setdefault(x, len(codes)) for x in a], np.int64)
    ib = np.array([codes.setdefault(x, len(codes)) for x in b], np.int64)
    ramp = np.arange(len(ib) + 1, dtype=np.int64)
    row = ramp.copy()
    for i, ch in enumerate(ia, start=1):
        t = np.empty_like(row)
        t[0] = i
        np.minimum(row[1:] + 1, row[:-1] + (ib != ch), out=t[1:])
        row = np.minimum.accumulate(t - ramp) + ramp
    return int(row[-1])


def matched_characters(word: str, support: str) -> list[bool]:
    """For each character of ``word``: whether it is aligned to an equal character of ``support`` (both
    folded) in a least-cost alignment of ``word`` with any contiguous part of ``support`` (a semi-global
    edit alignment: skipping support characters before and after the aligned part is free, everything else
    costs 1). Ties prefer matches. An empty support explains nothing."""
    w, s = fold(word), fold(support)
    n, m = len(w), len(s)
    if n == 0:
        return []
    if m == 0:
        return [False] * n
    inf = n + m + 1
    # cost[i][j]: best cost aligning w[:i] ending at support position j (free start anywhere in support)
    cost = [[0] * (m + 1)] + [[inf] * (m + 1) for _ in range(n)]
    for i in range(1, n + 1):
        cost[i][0] = i
        prev, cur = cost[i - 1], cost[i]
        for j in range(1, m + 1):
            cur[j] = min(prev[j - 1] + (w[i - 1] != s[j - 1]), prev[j] + 1, cur[j - 1] + 1)
    j = min(range(m + 1), key=lambda k: (cost[n][k], -k))  # free end: the best end point in support
    matched = [False] * n
    i = n
    while i > 0:
        here = cost[i][j]
        if j > 0 and here == cost[i - 1][j - 1] + (w[i - 1] != s[j - 1]):
            matched[i - 1] = w[i - 1] == s[j - 1]
            i, j = i - 1, j - 1
        elif here == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return matched
