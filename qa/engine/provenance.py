"""Provenance: qa version, git commit, and the identity hash of a run configuration."""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import lru_cache

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


def identity_sha256(fields: dict[str, object]) -> str:
    """Stable hash of the fields that decide a run's numbers (decoder weights, set, seeds, metrics, version)."""
    payload = json.dumps({**fields, "qa_version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
