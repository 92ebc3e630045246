"""What the ``upstream`` PiD backend needs around NVIDIA's code: its files, its process state, its settings.

Facts about nv-tlabs/PiD (checked against commit 2c8814c, file:line there):

* it runs from its repository root: the config file is a path relative to the working directory turned into a
  module name (``pid/_ext/imaginaire/utils/config_helper.py:146-153``), and the VAE is read from
  ``./checkpoints/...`` (``pid/_src/tokenizers/flux_vae.py:473`` and the other tokenizers);
* it fetches its text encoder (Gemma-2-2b-it) from the Hugging Face hub (``pid/_src/models/pixeldit_model.py:121``);
* loading resets the global seed to 0 and sets TF32/cudnn flags for the process (``model_loader.py:37-40``);
* it hard-codes ``"cuda"`` (``model_loader.py:46``, ``pixeldit_model.py:194``, ``pid_distill_model_infer.py:320``).

:func:`upstream_process` puts the checkout on ``sys.path`` and makes it the working directory only while loading,
forces the hub offline and restores the global RNGs, backend flags, environment and path afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: (backbone, checkpoint type) pairs of PiD's checkpoint registry (pid/_src/inference/checkpoint_registry.py:63-139);
#: the contract tests compare this table with the registry itself. Listed first = qa's default type.
CHECKPOINT_TYPES: dict[str, tuple[str, ...]] = {
    "flux": ("2k", "2kto4k_v1pt5"),
    "flux2": ("2k", "2kto4k_v1pt5"),
    "flux2-klein-4b": ("2k", "2kto4k_v1pt5"),
    "flux2-klein-9b": ("2k", "2kto4k_v1pt5"),
    "sd3": ("2k", "2kto4k"),
    "sdxl": ("2kto4k",),
    "qwenimage": ("2kto4k_v1pt5",),
    "qwenimage-2512": ("2kto4k_v1pt5",),
    "zimage": ("2k", "2kto4k_v1pt5"),
    "zimage-turbo": ("2k", "2kto4k_v1pt5"),
    "dinov2": ("2k",),
    "siglip": ("2k",),
}

#: The VAE file each backbone's tokenizer reads by default, relative to the checkout (its ``vae_pth`` argument).
#: dinov2 and siglip read several RAE files instead (no ``vae_path`` setting; they must lie under the checkout).
DEFAULT_VAE: dict[str, str] = {
    "flux": "checkpoints/ae.safetensors",
    "zimage": "checkpoints/ae.safetensors",
    "zimage-turbo": "checkpoints/ae.safetensors",
    "flux2": "checkpoints/flux2_ae.safetensors",
    "flux2-klein-4b": "checkpoints/flux2_ae.safetensors",
    "flux2-klein-9b": "checkpoints/flux2_ae.safetensors",
    "sd3": "checkpoints/sd3_vae/vae/diffusion_pytorch_model.safetensors",
    "sdxl": "checkpoints/sdxl_vae.safetensors",
    "qwenimage": "checkpoints/QwenImage_VAE_2d.pth",
    "qwenimage-2512": "checkpoints/QwenImage_VAE_2d.pth",
}

#: Spatial compression of each backbone's tokenizer (its ``spatial_compression_factor``; flux2 packs 2x2).
COMPRESSION: dict[str, int] = {
    "flux": 8, "zimage": 8, "zimage-turbo": 8, "flux2": 16, "flux2-klein-4b": 16, "flux2-klein-9b": 16, "sd3": 8,
    "sdxl": 8, "qwenimage": 8, "qwenimage-2512": 8, "dinov2": 16, "siglip": 16,
}

#: Backbones whose tokenizer resizes to a fixed size inside: their output is always 2048 x 2048 pixels.
FIXED_2048 = ("dinov2", "siglip")

#: Timesteps of the distilled students' schedule (``student_t_list``, 5 points = 4 steps;
#: pid/_src/configs/pid/experiment_2k/shared_config.py:35). More steps repeat timesteps
#: (pid_distill_model_infer.py:144 subsamples it with linspace).
SCHEDULE_STEPS = 4

#: Python modules upstream imports while loading (its pyproject's runtime dependencies that matter here).
UPSTREAM_MODULES: dict[str, str] = {
    "hydra": "hydra-core", "omegaconf": "omegaconf", "fvcore": "fvcore", "iopath": "iopath", "loguru": "loguru",
    "termcolor": "termcolor", "einops": "einops", "transformers": "transformers", "attrs": "attrs",
    "wandb": "wandb",  # imported by the checkpoint loader (imaginaire.utils.callback), not only for training
}

CONFIG_FILE = "pid/_src/configs/pid/config.py"
TEXT_ENCODER_HUB_ID = "Efficient-Large-Model/gemma-2-2b-it"


def missing_modules() -> list[str]:
    """pip names of upstream's dependencies that are not importable here."""
    out = []
    for module, pip_name in UPSTREAM_MODULES.items():
        try:
            if importlib.util.find_spec(module) is None:
                out.append(pip_name)
        except (ImportError, ValueError):
            out.append(pip_name)
    return out


def installed_checkout() -> Path | None:
    """The folder holding an importable ``pid`` package with PiD's loader (an editable install's checkout)."""
    try:
        spec = importlib.util.find_spec("pid")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))).parent
    return root if is_checkout(root) else None


def is_checkout(repo: Path) -> bool:
    """Whether ``repo`` looks like a PiD checkout (its loader and experiment config are there)."""
    return (repo / "pid/_src/utils/model_loader.py").is_file() and (repo / CONFIG_FILE).is_file()


def cuda_reason() -> str | None:
    """None where CUDA is usable; else why upstream PiD cannot run here."""
    if torch.cuda.is_available():
        return None
    return ("no CUDA device: PiD's code hard-codes 'cuda' (model_loader.py:46, pixeldit_model.py:194); run it on a "
            "machine with an NVIDIA GPU and a CUDA build of torch")


def hydra_string(value: str) -> str:
    """``value`` as a quoted Hydra override value (paths with any characters survive the override grammar)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _save_rng() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "random": random.getstate(),
                             "numpy": np.random.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


_FLAGS = (
    (torch.backends.cudnn, "deterministic"),
    (torch.backends.cudnn, "benchmark"),
    (torch.backends.cudnn, "allow_tf32"),
    (torch.backends.cuda.matmul, "allow_tf32"),
)


@contextmanager
def hub_offline() -> Iterator[None]:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE on, also in the already imported hub and transformers modules."""
    env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    patched: list[tuple[Any, str, Any]] = []
    for module_name, attr in (("huggingface_hub.constants", "HF_HUB_OFFLINE"),
                              ("transformers.utils.hub", "_is_offline_mode")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, attr):
            patched.append((module, attr, getattr(module, attr)))
            setattr(module, attr, True)
    os.environ.update({k: "1" for k in env})
    try:
        yield
    finally:
        for module, attr, value in patched:
            setattr(module, attr, value)
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def upstream_process(repo: Path) -> Iterator[None]:
    """While loading: ``repo`` first on ``sys.path`` and the working directory, the hub offline. Afterwards the
    working directory, ``sys.path``, environment, global RNG states (torch, CUDA, random, numpy) and the
    cudnn/TF32 flags are what they were before."""
    cwd, path = os.getcwd(), list(sys.path)
    rng = _save_rng()
    flags = [(obj, name, getattr(obj, name)) for obj, name in _FLAGS]
    try:
        with hub_offline():
            sys.path.insert(0, str(repo))
            os.chdir(repo)
            yield
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        _restore_rng(rng)
        for obj, name, value in flags:
            setattr(obj, name, value)
