"""One analysis per image pair, shared by every invented-detail metric, computed in batches on the run's device.

The engine calls each metric's ``prepare(samples)`` with the samples of a group of cases before scoring them;
the invented-detail metrics hand their pairs (output vs reference, redecoded vs baseline, output vs baseline)
to :data:`CACHE`, which analyses every pair it has not seen in one batched torch call per image size and keeps
the results for that group (*scope*: the list object passed to ``prepare``; a new list starts a new scope and
drops the old results). Results are keyed by a hash of the pixels, so equal images share one analysis (the
identical seeds of a deterministic decoder) and a changed array is never served a stale result; within a scope
each array is hashed once. Outside a scope (``qa score``, direct ``compute`` calls) the last few are kept.

A pair whose consumers read only the share (the latent split's redecoded/baseline pair, output/baseline) is
analysed without the region score and spectral readings (``analyse(..., readings=False)``: about 30% of an
analysis), kept apart from whole analyses: a whole lookup is never served a share-only result, and a share
lookup takes the whole analysis where the scope has one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import blake3
import numpy as np
import torch

from qa.metrics.base import ImageMetric, ImageSample
from qa.metrics.batching import BATCH_PIXELS, by_size, sample_pairs
from qa.metrics.invented import analysis
from qa.metrics.invented.model import InventedResult

#: on a CPU, at most this many pixels per image slot of an analysis call (elsewhere
#: :data:`qa.metrics.batching.BATCH_PIXELS`): the compiled kernels split each image over the threads already, and a
#: larger batch only grows the working set past the caches and the memory kept for reuse: 2048 px, two pairs, 2
#: threads: 3.3 CPU s together, 2.4 one at a time (page faults 124,000 and 0); 256 px: 16 pairs a call as fast as 8
CPU_BATCH_PIXELS = 1024 * 1024
#: results kept for calls outside a prepared scope (the metrics of one sample share them)
UNSCOPED_KEEP = 4


def to_batch(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """(H, W, 3) float arrays of one size -> (N, 3, H, W) float32 on ``device`` (a channels-last view; one image
    already float32 and contiguous is shared with numpy, not copied, and never written to)."""
    if len(images) == 1 and np.asarray(images[0]).flags.writeable:
        arr = np.ascontiguousarray(images[0], dtype=np.float32)[None]
    else:
        arr = np.stack([np.asarray(im, dtype=np.float32) for im in images])
    return torch.from_numpy(arr).to(device).permute(0, 3, 1, 2)


def _digest(*arrays: np.ndarray) -> str:
    """BLAKE3 (a cryptographic hash) of the arrays' shapes, dtypes and pixels, read in place (no copy), on as
    many threads as torch uses: about 11 ms for a 2048 px RGB float32 image with 2 threads here, against 33 ms
    for SHA-256 (one thread: hashlib cannot split one message)."""
    h = blake3.blake3(max_threads=max(1, torch.get_num_threads()))
    for a in arrays:
        arr = np.ascontiguousarray(a)
        h.update(repr((arr.shape, arr.dtype.str)).encode())
        h.update(arr.data.cast("B"))  # the pixels in place (no tobytes copy)
    return h.hexdigest()


class AnalysisCache:
    """Invented-detail results (:class:`~qa.metrics.invented.model.InventedResult`), HF energies and distortions,
    computed by :mod:`qa.metrics.invented.analysis` in batches (see the module docstring for the scoping rules)."""

    def __init__(self) -> None:
        self._scope: int | None = None
        self._held: list[Any] = []  # keeps the scoped arrays alive, so their ids stay unique
        self._digests: dict[int, str] = {}  # id of a held array -> hash of its pixels (hashed once per scope)
        self._scoped: dict[str, Any] = {}
        self._energy: dict[str, float] = {}  # pixel hash -> the three bands' summed energy (an analysis's)
        self._unscoped: dict[str, Any] = {}

    # -- scoping -----------------------------------------------------------------------------------------------
    def enter(self, scope: object) -> None:
        """Start (or continue) the scope ``scope``; a different object than the current one drops old results."""
        if self._scope != id(scope):
            self._scope = id(scope)
            self._held, self._digests, self._scoped, self._energy = [scope], {}, {}, {}

    def clear(self) -> None:
        """Forget everything (the engine's scope ends; tests)."""
        self._scope, self._held, self._digests, self._scoped, self._unscoped = None, [], {}, {}, {}
        self._energy = {}

    def _key(self, kind: str, arrays: tuple[np.ndarray, ...]) -> str:
        """``kind`` + the pixel hashes: equal images (e.g. the identical seeds of a deterministic decoder) share a
        result; an array of the current scope is hashed once."""
        parts = []
        for a in arrays:  # ids in _digests belong to held (live) arrays, so an id names one array
            parts.append(self._digests.get(id(a)) or _digest(a))
        return kind + ":" + ",".join(parts)

    def _lookup(self, kind: str, arrays: tuple[np.ndarray, ...], compute: Callable[[], Any]) -> Any:
        key = self._key(kind, arrays)
        if key in self._scoped:
            return self._scoped[key]
        if key not in self._unscoped:
            if len(self._unscoped) >= UNSCOPED_KEEP:
                self._unscoped.pop(next(iter(self._unscoped)))
            self._unscoped[key] = compute()
        return self._unscoped[key]

    # -- batched filling ---------------------------------------------------------------------------------------
    def prefill(self, scope: object, pairs: Iterable[tuple[np.ndarray, np.ndarray]], device: str,
                hf: Iterable[np.ndarray] = (), distortion: Iterable[tuple[np.ndarray, np.ndarray]] = (),
                shares: Iterable[tuple[np.ndarray, np.ndarray]] = ()) -> None:
        """Analyse every pair not yet known in ``scope``, batched by image size: invented detail of ``pairs``
        (output, reference), the share only (:meth:`invented_share`) of the pairs ``shares``, HF energy of the
        images ``hf``, distortion of the pairs ``distortion``."""
        self.enter(scope)
        dev = torch.device(device)
        cap = CPU_BATCH_PIXELS if dev.type == "cpu" else BATCH_PIXELS
        todo = self._missing("inv", pairs)
        whole = {self._key("inv", p) for p in todo}
        # a pair wanted whole, or analysed whole already, is not analysed again for its share
        share_todo = [p for p in self._missing("share", shares) if self._key("inv", p) not in whole
                      and self._key("inv", p) not in self._scoped]
        # output and reference with the same pixels (a decoder whose baseline is itself): no fit to run
        same: list[tuple[np.ndarray, ...]] = []
        differ: list[tuple[np.ndarray, ...]] = []
        share_differ: list[tuple[np.ndarray, ...]] = []
        for p in todo:
            (same if self._digests[id(p[0])] == self._digests[id(p[1])] else differ).append(p)
        for p in share_todo:
            (same if self._digests[id(p[0])] == self._digests[id(p[1])] else share_differ).append(p)
        for kind, items in (("inv", differ), ("share", share_differ)):
            for group in by_size(items, cap):
                res = analysis.analyse(to_batch([p[0] for p in group], dev), to_batch([p[1] for p in group], dev),
                                       readings=kind == "inv")
                for i, p in enumerate(group):
                    result = res.result(i)
                    self._store(kind, p, result)
                    self._energy[self._digests[id(p[0])]] = result.out_energy
                    self._energy[self._digests[id(p[1])]] = result.ref_energy
        for group in by_size(same, cap):
            # the band energies of an image some analysis of this scope has summed are not filtered again
            known = [self._energy.get(self._digests[id(p[0])]) for p in group]
            energy = None if None in known else torch.tensor(known, dtype=torch.float64)
            res = analysis.analyse_identical(to_batch([p[0] for p in group], dev), energy)
            for i, p in enumerate(group):
                self._store("inv", p, res.result(i))
        for group in by_size(self._missing("hf", [(im,) for im in hf]), cap):
            energies = analysis.hf_energy(to_batch([g[0] for g in group], dev)).cpu().tolist()
            for g, v in zip(group, energies, strict=True):
                self._store("hf", g, float(v))
        for group in by_size(self._missing("dist", distortion), cap):
            dists = analysis.distortion(to_batch([g[0] for g in group], dev), to_batch([g[1] for g in group], dev))
            for g, v in zip(group, dists.cpu().tolist(), strict=True):
                self._store("dist", g, float(v))

    def _missing(self, kind: str, items: Iterable[tuple[np.ndarray, ...]]) -> list[tuple[np.ndarray, ...]]:
        """The items whose result (by pixel content) is not known in the scope yet, each content once."""
        items = list(items)
        new = list({id(a): a for it in items for a in it if id(a) not in self._digests}.values())
        self._held.extend(new)
        self._digests.update((id(a), _digest(a)) for a in new)
        seen: set[str] = set()
        out = []
        for it in items:
            key = self._key(kind, it)
            if key not in self._scoped and key not in seen:
                seen.add(key)
                out.append(it)
        return out

    def _store(self, kind: str, arrays: tuple[np.ndarray, ...], value: Any) -> None:
        self._scoped[self._key(kind, arrays)] = value

    # -- lookups (compute on a miss) ---------------------------------------------------------------------------
    def invented(self, output: np.ndarray, reference: np.ndarray, device: str) -> InventedResult:
        """The analysis of ``output`` against ``reference`` ((H, W, 3), same size)."""
        return self._lookup("inv", (output, reference),  # type: ignore[no-any-return]
                            lambda: _analyse_pair(output, reference, device, readings=True))

    def invented_share(self, output: np.ndarray, reference: np.ndarray, device: str) -> InventedResult:
        """The analysis of ``output`` against ``reference`` for a consumer of the share only (invented energy,
        ``invented``, ``lost``, energies, map): the whole analysis where this scope has it, else one made with
        ``readings=False`` (``peak``, ``region`` and ``spectral`` NaN, see
        :func:`~qa.metrics.invented.analysis.analyse`)."""
        whole = self._key("inv", (output, reference))
        if whole in self._scoped:
            return self._scoped[whole]  # type: ignore[no-any-return]
        return self._lookup("share", (output, reference),  # type: ignore[no-any-return]
                            lambda: _analyse_pair(output, reference, device, readings=False))

    def hf_energy(self, image: np.ndarray, device: str) -> float:
        """Mean squared high-pass luma of ``image`` (luma^2), see :func:`qa.metrics.invented.analysis.hf_energy`."""
        return self._lookup("hf", (image,), lambda: float(analysis.hf_energy(to_batch([image], torch.device(device)))[0]))  # type: ignore[no-any-return]

    def distortion(self, output: np.ndarray, reference: np.ndarray, device: str) -> float:
        """Low-pass RMS RGB difference, see :func:`qa.metrics.invented.analysis.distortion`."""
        def one() -> float:
            dev = torch.device(device)
            return float(analysis.distortion(to_batch([output], dev), to_batch([reference], dev))[0])
        return self._lookup("dist", (output, reference), one)  # type: ignore[no-any-return]


def _analyse_pair(output: np.ndarray, reference: np.ndarray, device: str, readings: bool) -> InventedResult:
    """One pair's analysis outside a prepared scope (an identical pair is not fitted)."""
    dev = torch.device(device)
    if output.shape == reference.shape and np.array_equal(output, reference):
        return analysis.analyse_identical(to_batch([output], dev)).result(0)
    return analysis.analyse(to_batch([output], dev), to_batch([reference], dev), readings=readings).result(0)


#: the process-wide cache the metric classes share
CACHE = AnalysisCache()


class OnDevice(ImageMetric):
    """Base of the invented-detail metrics: a torch ``device`` (cpu, cuda, cuda:1, ...) and a batched
    :meth:`prepare` that analyses, in one call per image size, every pair the metric will ask for."""

    #: (first, second) sample fields analysed together, e.g. ("output", "reference")
    analyses: tuple[tuple[str, str], ...] = ()
    #: the same for pairs whose consumer reads only the share (:meth:`AnalysisCache.invented_share`)
    shares: tuple[tuple[str, str], ...] = ()

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def prepare(self, samples: list[ImageSample]) -> None:
        """Analyse every pair these samples will ask for, batched per size (results shared in :data:`CACHE`)."""
        pairs = [p for first, second in self.analyses for p in sample_pairs(samples, first, second)]
        shares = [p for first, second in self.shares for p in sample_pairs(samples, first, second)]
        CACHE.prefill(samples, pairs, self.device, shares=shares)
