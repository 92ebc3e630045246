"""The tracks a decoder serves: ``decode`` (latent -> pixels at native size), ``upscale`` (latent -> pixels at k x
native size), ``generate`` (caption + seed -> pixels). One definition, read by decoders, engine, gate and report."""

from __future__ import annotations

from typing import Literal

Track = Literal["decode", "upscale", "generate"]
TRACKS: tuple[Track, ...] = ("decode", "upscale", "generate")
