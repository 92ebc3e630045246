"""Provenance: qa version, git commit, the hash of the code that makes a run, and the identity hash of a run
configuration."""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import sys
from functools import cache, lru_cache
from pathlib import Path

import qa
from qa import __version__
from qa.settings import SOURCE_ROOT


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The git commit of the qa source tree ('' when not in a checkout), with '-dirty' if modified."""
    root = SOURCE_ROOT
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return ""
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "qa"],
            cwd=root, capture_output=True, text=True, timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def tree_sha256(root: Path) -> str:
    """sha256 over every file under ``root``: for each, sorted by relative posix path, the path, a NUL and the
    content bytes. ``__pycache__`` folders and ``*.pyc`` files are skipped (they follow the sources and differ
    between Python versions and machines)."""
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*")
                   if p.is_file() and p.suffix != ".pyc" and "__pycache__" not in p.relative_to(root).parts)
    digest = hashlib.sha256()
    for rel, path in files:
        digest.update(rel.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def qa_package_root() -> Path:
    """The folder of the qa package this process imported."""
    return Path(qa.__file__).resolve().parent


@lru_cache(maxsize=1)
def source_sha256() -> str:
    """The content hash of the installed qa package (:func:`tree_sha256` of its folder), once per process.

    A run's numbers depend on qa's code (decoders, metrics, the engine), not only on the static
    ``qa.__version__``: this hash enters the run's identity so that a finished run made by other code is not
    reused and an interrupted one is not resumed by it. It is of the content, not the git commit: committing
    an edit does not invalidate reuse, and an uncommitted edit does."""
    return tree_sha256(qa_package_root())


def _decoder_source(decoder: object) -> Path | None:
    """Where the code of ``decoder``'s class lives when it is outside the qa package: the folder of its module's
    top-level package (a plugin package: its helper modules too), or its module's file when it is no package's;
    None for qa's own decoders (in :func:`source_sha256`) and a class without a file."""
    try:
        cls = type(decoder)
        found = inspect.getsourcefile(cls)
        if not found:
            return None
        path = Path(found).resolve()
        if path.is_relative_to(qa_package_root()) or not path.is_file():
            return None
        top = sys.modules.get(cls.__module__.split(".")[0])
        top_file = getattr(top, "__file__", None)
        if "." in cls.__module__ and top_file and Path(top_file).name == "__init__.py":
            return Path(top_file).resolve().parent
        return path
    except (TypeError, OSError):
        return None


def _source_hash(path: Path) -> str:
    """sha256 of a file's bytes, or :func:`tree_sha256` of a folder (read again only when a file's size or
    modification time changed)."""
    if not path.is_dir():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in path.rglob("*") if p.is_file()))
    return _tree_hash(path, stamp)


@cache
def _tree_hash(path: Path, stamp: tuple[tuple[str, int, int], ...]) -> str:
    return tree_sha256(path)


def library_versions() -> str:
    """The versions of the libraries every metric and decoder computes with (their numbers change with them)."""
    import numpy
    import PIL
    import scipy
    import torch

    return f"python {sys.version.split()[0]}; torch {torch.__version__}; numpy {numpy.__version__}; " \
           f"scipy {scipy.__version__}; pillow {PIL.__version__}"


def code_sha256(decoder: object) -> str:
    """The hash of the code that makes ``decoder``'s run: qa's (:func:`source_sha256`), the library versions
    (:func:`library_versions`) and, when the decoder's class lives outside qa, its package's or file's content
    (:func:`_decoder_source`; failures to read it leave it out). Part of a run's identity: its numbers depend on
    all of them. Code a plugin imports from another package is not covered: a limit of any hash short of the
    whole environment's."""
    parts = [source_sha256(), library_versions()]
    path = _decoder_source(decoder)
    if path is not None:
        try:
            parts.append(_source_hash(path))
        except OSError:
            pass
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def identity_sha256(fields: dict[str, object]) -> str:
    """Stable hash of the fields that decide a run's numbers (decoder weights, set, seeds, metrics, code, version)."""
    payload = json.dumps({**fields, "qa_version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
