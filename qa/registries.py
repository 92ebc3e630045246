"""The registries of decoders, encoders and metrics, with the built-in members.

This file is the one place where built-ins are named; third-party packages add members through the entry-point
groups ``qa.decoders`` and ``qa.metrics`` (a target is ``"module:attr"``, a callable returning an instance).
"""

from __future__ import annotations

from qa.decoders.base import Decoder
from qa.metrics.base import Metric
from qa.registry import Registry

DECODERS: Registry[Decoder] = Registry("decoder", "qa.decoders")
METRICS: Registry[Metric] = Registry("metric", "qa.metrics")

_BUILTIN_DECODERS = {
    "identity": "qa.decoders.simple:IdentityDecoder",
    "bicubic": "qa.decoders.simple:BicubicDecoder",
}

_BUILTIN_METRICS = {
    "psnr": "qa.metrics.fidelity:PSNR",
    "ssim": "qa.metrics.fidelity:SSIM",
}

for _name, _target in _BUILTIN_DECODERS.items():
    DECODERS.register(_name, _target)
for _name, _target in _BUILTIN_METRICS.items():
    METRICS.register(_name, _target)
