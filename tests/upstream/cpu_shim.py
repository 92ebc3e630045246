"""Test-only shim: run upstream code that hard-codes ``"cuda"`` on the CPU.

While :func:`cuda_on_cpu` is active, every torch call that names a CUDA device gets the CPU instead
(factory functions, ``Tensor.to``/``.cuda``, ``Module.cuda``, ``torch.Generator``), and ``torch.autocast("cuda")``
is a no-op. Upstream's files stay unedited; qa's own code is not changed by this either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


def _cpu(dev: Any) -> Any:
    if isinstance(dev, torch.device) and dev.type == "cuda":
        return torch.device("cpu")
    if isinstance(dev, str) and dev.startswith("cuda"):
        return "cpu"
    return dev


class _CudaToCpu(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if "device" in kwargs:
            kwargs["device"] = _cpu(kwargs["device"])
        if func in (torch.Tensor.cuda,):
            return args[0]
        if func in (torch.Tensor.to,) and len(args) > 1:
            args = (args[0], _cpu(args[1]), *args[2:])
        return func(*args, **kwargs)


@contextmanager
def cuda_on_cpu() -> Iterator[None]:
    """Map CUDA devices to the CPU for the duration of the block (restores everything after)."""
    real_generator, real_module_cuda, real_autocast = torch.Generator, torch.nn.Module.cuda, torch.autocast

    class _GeneratorMeta(type):
        def __call__(cls, device: Any = "cpu") -> torch.Generator:  # type: ignore[override]
            return real_generator(device=_cpu(device))

        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, real_generator)

    class generator(metaclass=_GeneratorMeta):  # torch.Generator(device="cuda") -> a CPU generator
        pass

    class autocast(real_autocast):  # type: ignore[misc,valid-type]
        def __init__(self, device_type: str, *a: Any, **k: Any) -> None:
            k["enabled"] = False if device_type == "cuda" else k.get("enabled", True)
            super().__init__("cpu" if device_type == "cuda" else device_type, *a, **k)

    torch.Generator = generator  # type: ignore[assignment,misc]
    torch.nn.Module.cuda = lambda self, device=None: self  # type: ignore[method-assign,assignment]
    torch.autocast = autocast  # type: ignore[misc]
    torch.amp.autocast = autocast  # type: ignore[misc]
    try:
        with _CudaToCpu():
            yield
    finally:
        torch.Generator = real_generator  # type: ignore[misc]
        torch.nn.Module.cuda = real_module_cuda  # type: ignore[method-assign]
        torch.autocast = real_autocast  # type: ignore[misc]
        torch.amp.autocast = real_autocast  # type: ignore[misc]


_CONVS = (torch.nn.functional.conv2d, torch.nn.functional.conv_transpose2d)


class _Bf16ConvInFp32(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func in _CONVS and args and isinstance(args[0], torch.Tensor) and args[0].dtype == torch.bfloat16 \
                and args[0].device.type == "cpu":
            up = [a.float() if isinstance(a, torch.Tensor) else a for a in args]
            return func(*up, **kwargs).to(torch.bfloat16)
        return func(*args, **kwargs)


@contextmanager
def bf16_conv_in_fp32() -> Iterator[None]:
    """CPU bfloat16 convolutions computed in float32 and rounded back to bfloat16 (the same accumulation as a
    bf16 kernel; ~75x faster on CPUs without native bf16 convolution). Speed only: shapes and dtypes unchanged."""
    with _Bf16ConvInFp32():
        yield
