"""The ``upstream`` backend of ``l2p``: L2P (TencentYoutuResearch/T2I-L2P) through its own DiffSynth fork.

Facts about the fork (vinx6903/T2I-L2P, a copy with the fork; file:line there):

* it installs under the name ``diffsynth``; upstream DiffSynth-Studio has no L2P pipeline;
* it recognises a model file by an md5 of its tensor names and shapes (``diffsynth/models/model_loader.py:66``), so
  the folder must hold exactly one top-level ``*.safetensors`` (a stray extra one breaks detection);
* its DiT casts the timestep embedding to bfloat16 (``diffsynth/models/z_image_dit_L2P.py:54``): dtype must be
  bfloat16;
* image tokens (16 x 16 pixel patches) are padded to multiples of 32 and not cut back before the pixel decoder
  (``z_image_dit_L2P.py:15,785-791``): (height/16) * (width/16) must be a multiple of 32;
* its README samples with ``rand_device="cuda"``; the same seed on ``"cpu"`` gives other noise than its demo.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qa.decoders._common import finish, parse_dtype, resize
from qa.decoders.base import DecodeBatch, Decoder
from qa.decoders.weights import files_sha256
from qa.errors import DecoderError

L2P_INSTALL_HINT = (
    "install L2P: git clone https://github.com/TencentYoutuResearch/T2I-L2P && pip install -e T2I-L2P (its DiffSynth "
    "fork, package diffsynth); put the weights in one folder: <path>/model-1k-merge.safetensors (huggingface "
    "zhen-nan/L2P) as its only top-level .safetensors, <path>/text_encoder/*.safetensors and <path>/tokenizer/ "
    "(Tongyi-MAI/Z-Image-Turbo); then set [tool.qa.decoders.l2p] backend = 'upstream', path = '<path>'"
)


class L2PUpstreamDecoder(Decoder):
    """L2P through the fork's ``ZImagePipeline`` (``diffsynth.pipelines.z_image_L2P``), one prompt at a time.

    Settings: ``path`` (model folder: exactly one top-level ``*.safetensors`` = the merged L2P DiT,
    ``text_encoder/*.safetensors``, ``tokenizer/``), ``steps`` (30), ``cfg_scale`` (2.0), ``height``/``width``
    (1024; multiples of 16 with (height/16)*(width/16) a multiple of 32), ``dtype`` (bfloat16 only),
    ``rand_device`` (default: ``cuda`` on a CUDA device, as upstream's README, else ``cpu``). Called as upstream's
    example does: ``pipe(prompt=..., seed=seed, rand_device=..., num_inference_steps=steps, cfg_scale=...,
    height=..., width=...)`` with the run seed as given; the image is resized to the requested size.
    """

    family = "l2p"
    backend = "upstream"
    track = "generate"
    inputs = ("caption",)
    stochastic = True
    max_batch = 1

    def __init__(self, name: str | None = None, device: str = "cpu", path: str | Path | None = None,
                 steps: int = 30, cfg_scale: float = 2.0, height: int = 1024, width: int = 1024,
                 dtype: str = "bfloat16", rand_device: str | None = None, **settings: object) -> None:
        label = name or "l2p"
        if settings:
            raise DecoderError(f"decoder {label!r}: unknown setting(s) {', '.join(sorted(settings))}",
                               "the upstream l2p takes path, steps, cfg_scale, height, width, dtype, rand_device")
        if height % 16 or width % 16 or (height // 16) * (width // 16) % 32:
            raise DecoderError(f"decoder {label!r}: L2P needs height and width in multiples of 16 with "
                               f"(height/16)*(width/16) a multiple of 32, got {height}x{width}",
                               "e.g. 1024x1024, 512x512, 256x256 or 128x128")
        if parse_dtype(dtype, label) != torch.bfloat16:
            raise DecoderError(f"decoder {label!r}: L2P's DiT computes in bfloat16 (z_image_dit_L2P.py:54), "
                               f"dtype {dtype!r} fails inside it", "use dtype = 'bfloat16'")
        self.folder = Path(path) if path else None
        self.steps, self.cfg_scale, self.height, self.width = int(steps), float(cfg_scale), int(height), int(width)
        self.dtype_name = str(dtype)
        super().__init__(name, device, backend="upstream", path=str(path or ""), steps=self.steps,
                         cfg_scale=self.cfg_scale, height=self.height, width=self.width, dtype=self.dtype_name)
        self.rand_device = str(rand_device or ("cuda" if self.device.type == "cuda" else "cpu"))
        self.settings["rand_device"] = self.rand_device
        self._pipe: Any = None

    def _files(self) -> tuple[list[Path], list[Path], Path] | str:
        """(main DiT file, text-encoder files, tokenizer folder), or what is missing."""
        if self.folder is None:
            return "no model folder configured (setting 'path')"
        if not self.folder.is_dir():
            return f"{self.folder}: model folder not found"
        main = sorted(self.folder.glob("*.safetensors"))
        te = sorted((self.folder / "text_encoder").glob("*.safetensors"))
        tok = self.folder / "tokenizer"
        missing = [what for what, ok in (("a top-level *.safetensors L2P DiT", main), ("text_encoder/*.safetensors", te),
                                         ("tokenizer/", tok.is_dir())) if not ok]
        if missing:
            return f"{self.folder}: missing {', '.join(missing)}"
        if len(main) > 1:
            return (f"{self.folder}: {len(main)} top-level .safetensors files ({', '.join(p.name for p in main)}); "
                    "L2P recognises its DiT by a hash of one file's tensors, so keep only the DiT there")
        return main, te, tok

    def unavailable_reason(self) -> str | None:
        try:
            found = importlib.util.find_spec("diffsynth") is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"the diffsynth package (L2P's DiffSynth fork) is not importable; {L2P_INSTALL_HINT}"
        try:
            found = importlib.util.find_spec("diffsynth.pipelines.z_image_L2P") is not None
        except Exception:  # noqa: BLE001 - importing the parent package can fail in many ways
            found = False
        if not found:
            return f"diffsynth is installed but has no pipelines.z_image_L2P (not L2P's fork); {L2P_INSTALL_HINT}"
        files = self._files()
        return f"{files}; {L2P_INSTALL_HINT}" if isinstance(files, str) else None

    def weights_sha256(self) -> str:
        """sha256 over the DiT file then the text encoder's files (tokenizer files are not hashed)."""
        files = self._files()
        if isinstance(files, str):
            raise DecoderError(f"decoder {self.name!r}: {files}", L2P_INSTALL_HINT)
        return files_sha256(files[0] + files[1])

    @property
    def pipe(self) -> Any:
        """The fork's pipeline, built on first use from the local folder (hub offline; never a download)."""
        if self._pipe is None:
            reason = self.unavailable_reason()
            if reason:
                raise DecoderError(f"decoder {self.name!r} cannot load L2P: {reason}")
            from qa.decoders.pid_upstream_env import hub_offline

            main, te, tok = self._files()  # type: ignore[misc,str-unpack]
            try:
                with hub_offline():
                    from diffsynth.pipelines.z_image_L2P import ModelConfig, ZImagePipeline

                    self._pipe = ZImagePipeline.from_pretrained(
                        torch_dtype=torch.bfloat16, device=str(self.device),
                        model_configs=[ModelConfig(path=[str(p) for p in main]), ModelConfig(path=[str(p) for p in te])],
                        tokenizer_config=ModelConfig(path=str(tok)),
                    )
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - upstream raises many kinds
                raise DecoderError(f"{self.folder}: L2P could not load it ({type(exc).__name__}: {exc})",
                                   L2P_INSTALL_HINT) from exc
        return self._pipe

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        outs = []
        for prompt in batch.captions:
            img = self.pipe(prompt=prompt, seed=int(seed), rand_device=self.rand_device,
                            num_inference_steps=self.steps, cfg_scale=self.cfg_scale,
                            height=self.height, width=self.width)
            img = img[0] if isinstance(img, list) else img
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
            outs.append(torch.from_numpy(arr).permute(2, 0, 1))
        return finish(resize(torch.stack(outs), batch.size), batch, self.name)
