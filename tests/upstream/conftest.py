"""Fixtures of the contract tests against real upstream code (skipped, with the reason, where it is absent).

``QA_PID_REPO``: a checkout of nv-tlabs/PiD. Its dependencies (hydra-core, omegaconf, fvcore, iopath, loguru,
termcolor, einops, transformers) must be importable; see docs/pid.md for the scratch environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch


def pid_repo_or_skip() -> Path:
    """The PiD checkout named by ``QA_PID_REPO``; skips with the reason when it cannot be used here."""
    from qa.decoders import pid_upstream_env as env

    value = os.environ.get("QA_PID_REPO")
    if not value:
        pytest.skip("QA_PID_REPO is not set: point it at a checkout of github.com/nv-tlabs/PiD (docs/pid.md)")
    repo = Path(value).expanduser().resolve()
    if not env.is_checkout(repo):
        pytest.skip(f"QA_PID_REPO={value} is not a PiD checkout (no {env.CONFIG_FILE})")
    missing = env.missing_modules()
    if missing:
        pytest.skip(f"PiD's dependencies are not importable here: {', '.join(missing)} (docs/pid.md)")
    return repo


@dataclass
class PidParts:
    """The tiny random parts, written under ``root``."""

    repo: Path
    root: Path
    checkpoint: Path
    vae: Path
    text_encoder: Path


@pytest.fixture(scope="session")
def cpu_for_cuda() -> Iterator[None]:
    """Where no CUDA device exists: upstream's hard-coded ``cuda`` runs on the CPU (tests/upstream/cpu_shim.py)
    and qa's CUDA requirement is lifted. On a CUDA machine: nothing changes."""
    if torch.cuda.is_available():
        yield
        return
    from qa.decoders import pid_upstream_env as env
    from tests.upstream.cpu_shim import cuda_on_cpu

    real = env.cuda_reason
    env.cuda_reason = lambda: None  # type: ignore[assignment]
    try:
        with cuda_on_cpu():
            yield
    finally:
        env.cuda_reason = real  # type: ignore[assignment]


@pytest.fixture(scope="session")
def pid_parts(tmp_path_factory: pytest.TempPathFactory) -> PidParts:
    """A tiny random PiD student (.pth), a random Flux VAE file and a random Gemma-2 text encoder folder."""
    repo = pid_repo_or_skip()
    import sys

    sys.path.insert(0, str(repo))  # the helpers read upstream's net and VAE definitions
    try:
        from tests.upstream import tiny_pid

        root = tmp_path_factory.mktemp("pid_parts")
        torch.set_num_threads(min(2, torch.get_num_threads()))
        parts = PidParts(repo, root, tiny_pid.make_student(root / "pid_tiny.pth"),
                         tiny_pid.make_flux_vae(root / "ae.safetensors"), tiny_pid.make_text_encoder(root / "gemma"))
    finally:
        sys.path.remove(str(repo))
    return parts


#: modules T2I-L2P's DiffSynth fork imports on load (its pyproject's dependencies that matter here)
L2P_MODULES = ("modelscope", "peft", "einops", "transformers", "safetensors")


@pytest.fixture(scope="session")
def l2p_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``QA_L2P_REPO`` (T2I-L2P with its DiffSynth fork) importable as ``diffsynth`` for the session, and a model
    folder with a tiny random L2P DiT, text encoder and tokenizer whose hashes the fork recognises."""
    import importlib.util
    import sys

    value = os.environ.get("QA_L2P_REPO")
    if not value:
        pytest.skip("QA_L2P_REPO is not set: point it at a checkout of T2I-L2P with its DiffSynth fork (docs/pid.md)")
    repo = Path(value).expanduser().resolve()
    if not (repo / "diffsynth/pipelines/z_image_L2P.py").is_file():
        pytest.skip(f"QA_L2P_REPO={value} has no diffsynth/pipelines/z_image_L2P.py (not T2I-L2P's fork)")
    missing = [m for m in L2P_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the L2P fork's dependencies are not importable here: {', '.join(missing)} (docs/pid.md)")
    sys.path.insert(0, str(repo))
    try:
        from tests.upstream import tiny_l2p

        folder = tiny_l2p.make_parts(tmp_path_factory.mktemp("l2p_parts") / "model")
        tiny_l2p.register(folder)
        yield folder
    finally:
        sys.path.remove(str(repo))
