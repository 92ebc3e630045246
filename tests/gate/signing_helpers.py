"""Reviewer keys for sign-off tests: a key pair and a trusted-keys file, optionally exported as the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.gate.signing import KEY_ENV, TRUSTED_ENV, generate_key


def make_reviewer(folder: Path, names: str, trusted: Path | None = None) -> tuple[Path, Path]:
    """A new key at ``folder/<first name>_ed25519`` allowed to sign as ``names`` (comma-separated), appended to
    ``trusted`` (default ``folder/allowed_signers``); returns (key, trusted file)."""
    first = names.split(",")[0]
    key, line = generate_key(folder / f"{first}_ed25519", first)
    trusted = trusted or folder / "allowed_signers"
    with open(trusted, "a", encoding="utf-8") as fh:
        fh.write(f"{names} {line.split(' ', 1)[1]}\n")
    return key, trusted


def export_reviewer(monkeypatch: pytest.MonkeyPatch, key: Path, trusted: Path) -> None:
    """Make ``key`` and ``trusted`` the defaults of `qa signoff` ($QA_SIGNING_KEY, $QA_TRUSTED_KEYS)."""
    monkeypatch.setenv(KEY_ENV, str(key))
    monkeypatch.setenv(TRUSTED_ENV, str(trusted))
