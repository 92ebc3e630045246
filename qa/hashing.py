"""Content hashes (hex sha256) of bytes and files: the one implementation every record and cache key uses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_files(paths: Iterable[str | Path], chunk: int = CHUNK) -> str:
    """Hex sha256 over the bytes of ``paths`` concatenated in the given order, read in ``chunk``-byte blocks.

    For a single file this is that file's own sha256 (what ``sha256sum`` prints).
    """
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path, chunk: int = CHUNK) -> str:
    """Hex sha256 of one file (what ``sha256sum`` prints)."""
    return sha256_files([path], chunk)
