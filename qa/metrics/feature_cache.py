"""Feature cache in the DuckDB ``features`` table, and an extractor wrapper that only runs on cache misses.

Key: (extractor name, extractor weights sha256, image sha256, preprocessing). ``preprocessing`` names every
choice that changes a vector (the resizer and the size, e.g. ``"uint8-round;tf1-bilinear;299"``), so a cached
vector is never reused under another definition; :func:`computation_tag`, appended to it, names the code and
the device that computed the vectors (the source of the extractor's modules and of the image loader, the
libraries' versions, the device type), so vectors from other code or another device are recomputed, never
served beside fresh ones. The image sha256 is :func:`pixels_sha256` for decoded outputs
(the pixels, not a file) or the file's sha256 for reference images (given by the caller).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from qa.metrics.base import ImageSample, MetricInputError
from qa.store.db import Store
from qa.store.features import FeatureKey, get_features, put_features

__all__ = ["CachedExtractor", "FeatureCache", "FeatureKey", "FeatureVectors", "KeyedExtractor", "QueuesFeatures",
           "UsesFeatureCache", "computation_tag", "merge_seen_references", "new_reference", "pixels_sha256", "to_uint8"]


class FeatureVectors(Protocol):
    """The feature cache a :class:`CachedExtractor` reads and fills: vectors of one extractor under one
    preprocessing (``key``), by image sha256. :class:`FeatureCache` (DuckDB) and the Ray workers' in-memory
    ``ShippedFeatureCache`` (in the engine's Ray worker module) implement it."""

    key: FeatureKey

    def get(self, shas: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors (float32) for those of ``shas`` that are present."""
        ...

    def put(self, items: dict[str, np.ndarray]) -> None:
        """Keep vectors (replacing any with the same image sha256)."""
        ...


@runtime_checkable
class KeyedExtractor(Protocol):
    """A feature extractor that names itself: ``name``, weights ``sha256`` and ``preprocessing`` (the cache key)."""

    name: str
    sha256: str
    preprocessing: str

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        """Features (N, d) of uint8 (H, W, 3) images."""
        ...


#: the modules between a reference file and the pixels an extractor sees (part of every :func:`computation_tag`)
LOADING_MODULES = ("qa.imageio", "qa.png16", "qa.png_rows", "qa.metrics.feature_cache")
#: the libraries whose version can change a loaded image or a vector (absent ones count as "-")
LIBRARIES = ("torch", "numpy", "pillow")


def _source_bytes(module: str) -> bytes:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(f"computation_tag: no Python source for module {module!r}")
    return Path(spec.origin).read_bytes()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


@lru_cache(maxsize=32)
def computation_tag(modules: tuple[str, ...], device: str = "cpu", libraries: tuple[str, ...] = ()) -> str:
    """``";code=<16 hex>;device=<type>"``: the part of a feature key that names what computed the vectors.

    ``code`` is a sha256 over the source files of ``modules`` (the extractor's own) and of
    :data:`LOADING_MODULES`, and the versions of :data:`LIBRARIES` and ``libraries``; ``device`` is the torch device type
    (``cpu``, ``cuda``, ...; CUDA's float32 kernels differ from the CPU's in the last bits, and TF32 more).
    An edit to a resizer, a network or the loader, or a library upgrade, changes the key, so the reference
    vectors are recomputed rather than served beside output vectors of the new code. Once per process."""
    h = hashlib.sha256()
    for module in (*modules, *LOADING_MODULES):
        h.update(module.encode() + b"\0" + _source_bytes(module) + b"\0")
    for package in (*LIBRARIES, *libraries):
        h.update(f"{package}={_version(package)}\0".encode())
    kind = str(device).split(":", 1)[0] or "cpu"
    return f";code={h.hexdigest()[:16]};device={kind}"


def to_uint8(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8, rounded to nearest."""
    return np.clip(np.floor(np.asarray(img, np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def pixels_sha256(img: np.ndarray) -> str:
    """sha256 of an image's uint8 RGB pixel bytes plus its shape (float [0, 1] input is rounded to uint8 first)."""
    u8 = img if img.dtype == np.uint8 else to_uint8(img)
    h = hashlib.sha256(f"{u8.shape}".encode())
    h.update(np.ascontiguousarray(u8).tobytes())
    return h.hexdigest()


def new_reference(sample: ImageSample, seen: set[str]) -> tuple[str, np.ndarray] | None:
    """The sample's reference-distribution image as ``(sha256, uint8 pixels)`` the first time a set metric sees it
    (``seen``, the metric's set of reference sha256s, is updated), else None. The key is the reference file's
    sha256 when the sample names it, else :func:`pixels_sha256`."""
    real = sample.real_image
    if real is None:
        return None
    sha = sample.reference_sha256 or pixels_sha256(real)
    if sha in seen:
        return None
    seen.add(sha)
    return sha, to_uint8(real)


def merge_seen_references(metric: str, seen: set[str], refs: Iterable[str]) -> None:
    """Add another shard's reference sha256s to ``seen``. A reference both shards added cannot be de-duplicated
    after the fact (its features are already in both states): MetricInputError, never a double count."""
    refs = list(refs)
    twice = seen.intersection(refs)
    if twice:
        raise MetricInputError(f"{metric}: {len(twice)} reference image(s) were added in two shards (e.g. "
                               f"{sorted(twice)[0][:12]}); the merged state would count them twice",
                               "run this set with --engine local")
    seen.update(refs)


class FeatureCache:
    """Vectors of one extractor under one preprocessing, stored through :class:`qa.store.Store`."""

    def __init__(self, store: Store, extractor: str, extractor_sha256: str, preprocessing: str) -> None:
        self.store = store
        self.key: FeatureKey = (extractor, extractor_sha256, preprocessing)

    def get(self, shas: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors (float32) for those of ``shas`` that are present."""
        return get_features(self.store, self.key, shas)

    def put(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors (replacing any with the same key)."""
        put_features(self.store, self.key, items)


class CachedExtractor:
    """Runs ``extract(images uint8 (N, H, W, 3)) -> (N, d)`` only on images whose vectors are not cached.

    ``n_forward`` counts images actually run through the extractor (0 on a rerun with nothing changed); an
    image that occurs several times in one call runs once.

    The cache is used (read and written) only when :attr:`key` names the features completely: an extractor
    without a weights sha256 (e.g. a CLIP model passed as ``model=`` without ``model_sha256``) never shares
    vectors with another. A cached vector is checked before it is served: one that is not finite, not 1-d, or
    (when ``dim`` is given) of another length is treated as absent, computed again and replaced
    (``n_rejected`` counts them). A computed vector that is not finite is returned but never cached.
    """

    def __init__(self, extract: Callable[[list[np.ndarray]], np.ndarray], cache: FeatureVectors | None,
                 dim: int | None = None) -> None:
        self.extract = extract
        self.cache = cache
        self.dim = dim
        self.n_forward = 0
        self.n_cached = 0
        self.n_rejected = 0

    @property
    def key(self) -> FeatureKey | None:
        """The cache key of these features: the cache's, else the extractor's own when it names itself (a
        :class:`KeyedExtractor`); None when nothing names them (such features are never cached or shipped)."""
        if self.cache is not None:
            key = self.cache.key
        elif isinstance(self.extract, KeyedExtractor):
            key = (self.extract.name, self.extract.sha256, self.extract.preprocessing)
        else:
            return None
        return key if all(isinstance(k, str) and k for k in key) else None

    def usable(self, vector: np.ndarray) -> bool:
        """Whether a cached vector may be served: 1-d, finite, and ``dim`` long when ``dim`` is known."""
        v = np.asarray(vector)
        return v.ndim == 1 and (self.dim is None or v.shape[0] == self.dim) and bool(np.isfinite(v).all())

    def __call__(self, shas: list[str], images: list[np.ndarray]) -> np.ndarray:
        """Features (len(shas), d) float32 in the order given; images are uint8 (H, W, 3)."""
        cache = self.cache if self.key is not None else None  # an incomplete key: never read or written
        found = cache.get(shas) if cache is not None else {}
        bad = [s for s, v in found.items() if not self.usable(v)]
        for s in bad:
            del found[s]
        self.n_rejected += len(bad)
        first: dict[str, int] = {}
        for i, s in enumerate(shas):  # identical images (same sha) run once
            if s not in found and s not in first:
                first[s] = i
        todo = list(first.values())
        new: dict[str, np.ndarray] = {}
        if todo:
            feats = np.asarray(self.extract([images[i] for i in todo]), np.float32)
            self.n_forward += len(todo)
            new = {shas[i]: feats[k] for k, i in enumerate(todo)}
            keep = {s: v for s, v in new.items() if np.isfinite(v).all()}  # a NaN/Inf vector is never cached
            if cache is not None and keep:
                cache.put(keep)
        self.n_cached += sum(s in found for s in shas)
        return np.stack([found[s] if s in found else new[s] for s in shas])


@runtime_checkable
class QueuesFeatures(Protocol):
    """A metric that queues images and computes their features in batches (FID, KID, CMMD, CLIP score): the
    engine calls :meth:`flush_features` at the end of each shard, so the features of that shard's images are
    computed (and stored) with it rather than in a later shard or at the end of the run."""

    def flush_features(self) -> None:
        """Compute the features of every queued image now."""
        ...


@runtime_checkable
class UsesFeatureCache(Protocol):
    """A metric whose features go through a :class:`CachedExtractor` (FID, KID, CMMD, CLIP score).

    ``store``: the DuckDB store of its :class:`FeatureCache` (None: no database, e.g. inside a Ray worker, which
    gets a shipped in-memory cache instead); ``extractor()``: the cached extractor (loads weights on first use).
    """

    store: Store | None

    def extractor(self) -> CachedExtractor:
        """The metric's cached feature extractor."""
        ...
