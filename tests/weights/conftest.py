"""A home of its own for each weights test: no real cache (torch hub, Hugging Face, qa's weights folder) is read."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as $HOME, with the weights folder at ``qa-weights`` and the torch and HF caches inside it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("QA_WEIGHTS_DIR", str(tmp_path / "qa-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path
