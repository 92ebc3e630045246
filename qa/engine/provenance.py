"""Provenance: qa version, git commit, the hash of the code that makes a run, and the identity hash of a run
configuration."""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
from functools import lru_cache
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
    """The source file of ``decoder``'s class when it lies outside the qa package (a plugin's or a test's
    decoder), else None (qa's own decoders are in :func:`source_sha256`; so is a class without a file)."""
    try:
        found = inspect.getsourcefile(type(decoder))
        if not found:
            return None
        path = Path(found).resolve()
        return None if path.is_relative_to(qa_package_root()) or not path.is_file() else path
    except (TypeError, OSError):
        return None


def code_sha256(decoder: object) -> str:
    """The hash of the code that makes ``decoder``'s run: qa's (:func:`source_sha256`) combined with the content
    of the decoder class's source file when it lies outside the qa package (failures to find or read that file
    leave qa's hash alone). Part of a run's identity: its numbers depend on both."""
    qa_hash = source_sha256()
    path = _decoder_source(decoder)
    if path is None:
        return qa_hash
    try:
        file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return qa_hash
    return hashlib.sha256(f"{qa_hash}\0{file_hash}".encode()).hexdigest()


def identity_sha256(fields: dict[str, object]) -> str:
    """Stable hash of the fields that decide a run's numbers (decoder weights, set, seeds, metrics, code, version)."""
    payload = json.dumps({**fields, "qa_version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
