"""Safe checkpoint handling shared by the decoder adapters.

Checkpoints are read only through safetensors or ``torch.load(weights_only=True)`` (no pickled code runs).
Every failure names the file: a missing file raises :class:`WeightsMissingError`, a corrupt file or one whose
tensors do not fit the model raises :class:`DecoderError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from qa.errors import DecoderError, WeightsMissingError
from qa.hashing import sha256_files

#: File suffixes that hold weights (hashed by :func:`folder_weights_sha256`).
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")
#: Suffixes read with safetensors; all others with ``torch.load(weights_only=True)``.
SAFETENSORS_SUFFIXES: tuple[str, ...] = (".safetensors",)


def weight_files(folder: Path, suffixes: Iterable[str] = WEIGHT_SUFFIXES) -> list[Path]:
    """Weight files under ``folder`` (recursively), sorted by their path relative to ``folder``."""
    suffixes = tuple(suffixes)
    files = [p for p in Path(folder).rglob("*") if p.is_file() and p.name.endswith(suffixes)]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def files_sha256(files: Iterable[Path], chunk: int = 1 << 20) -> str:
    """sha256 over the bytes of ``files`` concatenated in the given order.

    For a single file this equals that file's own sha256 (what ``sha256sum`` prints).
    """
    files = list(files)
    if not files:
        raise WeightsMissingError("no weight files to hash")
    return sha256_files(files, chunk)


def folder_weights_sha256(folder: str | Path, suffixes: Iterable[str] = WEIGHT_SUFFIXES) -> str:
    """sha256 over the weight files of ``folder`` taken in sorted relative-path order (see :func:`files_sha256`)."""
    folder = Path(folder)
    files = weight_files(folder, suffixes)
    if not files:
        raise WeightsMissingError(
            f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)})", "point the decoder at a folder with weights"
        )
    return files_sha256(files)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file as a flat ``{name: tensor}`` dict on the CPU.

    ``.safetensors`` files are read with safetensors; anything else with ``torch.load(weights_only=True)``.
    A ``{"state_dict": ...}`` / ``{"model": ...}`` / ``{"ema": ...}`` wrapper is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsMissingError(f"{path}: checkpoint not found", "qa never downloads weights; check the path")
    try:
        if path.name.endswith(SAFETENSORS_SUFFIXES):
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means a bad file
        raise DecoderError(
            f"{path}: cannot read checkpoint ({type(exc).__name__}: {str(exc)[:200]})",
            "the file is corrupt, truncated, or not a safetensors / weights-only torch checkpoint",
        ) from exc
    for key in ("state_dict", "model", "ema"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DecoderError(f"{path}: not a state dict of tensors (got {type(obj).__name__})")
    return {str(k): v for k, v in obj.items()}


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """Load ``state`` into ``module`` strictly; missing, unexpected or wrong-shape tensors raise
    :class:`DecoderError` naming ``source`` and the first offending keys."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} wrong-shape tensor(s), e.g. {'; '.join(wrong[:3])}")
    if missing:
        problems.append(f"{len(missing)} missing tensor(s), e.g. {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {', '.join(unexpected[:3])}")
    if problems:
        raise DecoderError(
            f"{source}: checkpoint does not fit the model: " + "; ".join(problems),
            "the checkpoint belongs to another architecture or configuration",
        )
    module.load_state_dict(dict(state), strict=True)


def non_float_error(source: str | Path, bad: list[str]) -> DecoderError:
    """The error for a checkpoint whose tensors ``bad`` ("name dtype", at least one) are not floating point: loading
    would cast them to float without a word (or fail obscurely with mixed dtypes), and the network would compute
    something else."""
    return DecoderError(
        f"{source}: {len(bad)} tensor(s) are not floating point, e.g. {', '.join(bad[:3])}: the network computes in "
        "floating point, and integer weights cast to float give another network",
        "use the released floating-point checkpoint (float32, float16 or bfloat16); a quantised checkpoint is not "
        "supported")
