"""The ``taesd`` family: tiny autoencoders (TAESD, TAESDXL, TAESD3, TAEF1, TAEF2) from their original ``.pth``
state dicts, on the decode track (raw latents -> pixels at 8x; deterministic).

The network is qa's own (:mod:`qa.decoders.taesd_layout`); the files are read with
``torch.load(weights_only=True)`` and must be plain state dicts of tensors that fit the layout strictly.
Both halves are loaded: the encoder gives the latents the decoder is fed and re-encodes its outputs
(``latent_consistency``).

Where the weights come from:

* ``taef2`` (registered): the weights store (``qa weights import .../taef2_encoder.pth`` and
  ``.../taef2_decoder.pth``; sha256-checked, see ``qa weights list``);
* any variant with ``path``: a folder holding ``<variant>_encoder.pth`` and ``<variant>_decoder.pth`` as
  released, e.g. in ``qa.toml``::

      [decoders.taef1]
      family = "taesd"
      variant = "taef1"
      path = "weights/taesd"

Diffusers-format ``AutoencoderTiny`` folders (``config.json`` + safetensors) are the ``vae`` family's:
``family = "vae"``, ``path = FOLDER``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from qa.decoders._common import finish, parse_dtype, require_latents
from qa.decoders.base import DecodeBatch, Decoder, Encoder
from qa.decoders.taesd_layout import FACTOR, VARIANTS, Variant, build_decoder, build_encoder, detect_variant
from qa.decoders.weights import files_sha256, load_into, load_state_dict, non_float_error
from qa.errors import DecoderError, WeightsMissingError

#: weights-store entries (encoder, decoder) of the variants whose official files qa knows
STORE_NAMES: dict[str, tuple[str, str]] = {"taef2": ("taef2-encoder", "taef2-decoder")}


def load_halves(encoder_file: Path, decoder_file: Path, variant: Variant) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Both networks with the files' weights (float32, CPU, eval, no grad); DecoderError when a file is not a
    plain weights-only state dict, does not have ``variant``'s layout, or holds tensors that are not floating
    point (any float dtype is cast to float32: the released files are float16)."""
    enc_sd = load_state_dict(encoder_file)
    dec_sd = load_state_dict(decoder_file)
    found = detect_variant(enc_sd, dec_sd, f"{encoder_file.name} + {decoder_file.name}")
    if (found.channels, found.pooled) != (variant.channels, variant.pooled):
        raise DecoderError(
            f"{encoder_file.parent}: the files have the layout of {found.name} ({found.channels} channels), "
            f"not {variant.name} ({variant.channels})",
            f"set variant = {found.name!r} or point `path` at the {variant.name} files",
        )
    nets = []
    for sd, build, source in ((enc_sd, build_encoder, encoder_file), (dec_sd, build_decoder, decoder_file)):
        net = build(variant)
        refuse_non_float(sd, net.state_dict(), source)
        load_into(net, {k: v.float() for k, v in sd.items()}, source)
        nets.append(net.eval().requires_grad_(False))
    return nets[0], nets[1]


def refuse_non_float(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: Path) -> None:
    """:class:`DecoderError` naming the tensors and their dtype when ``state`` (read from ``source``) holds a tensor
    that is not floating point (int8, uint8, bool, ...) where the network's ``expected`` state is floating point
    or has no tensor of that name: ``.float()`` would cast it without a word, and the network computes something
    else."""
    bad = [f"{k} {str(v.dtype).removeprefix('torch.')}" for k, v in sorted(state.items())
           if not v.is_floating_point() and (k not in expected or expected[k].is_floating_point())]
    if bad:
        raise non_float_error(source, bad)


class TAESDEncoder(Encoder):
    """Pixels (N, 3, H, W) in [0, 1] -> raw latents (N, C, H/8, W/8) of the decoder's tiny autoencoder."""

    factor = FACTOR

    def __init__(self, decoder: TAESDDecoder) -> None:
        self._decoder = decoder
        self.name = f"{decoder.name}-encoder"

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self._decoder.encode_pixels(images)

    def sha256(self) -> str:
        return self._decoder.encoder_sha256()


class TAESDDecoder(Decoder):
    """A tiny autoencoder's decoder: raw latents (N, C, h, w) -> pixels (N, 3, 8h, 8w) in [0, 1].

    Settings: ``variant`` (one of :data:`~qa.decoders.taesd_layout.VARIANTS`, default ``taesd``), ``path``
    (folder with ``<variant>_encoder.pth`` / ``<variant>_decoder.pth``; without it the weights store, which
    knows taef2 only), ``dtype`` (``float32`` default).
    """

    family = "taesd"
    backend = "pth"
    track = "decode"
    inputs = ("latent",)
    stochastic = False
    scale = 1
    max_batch = 8

    def __init__(
        self,
        name: str | None = None,
        device: str = "cpu",
        variant: str = "taesd",
        path: str | Path | None = None,
        dtype: str = "float32",
        **settings: object,
    ) -> None:
        label = name or variant
        if settings:
            raise DecoderError(f"decoder {label!r}: unknown setting(s) {', '.join(sorted(settings))}",
                               "the taesd family takes variant, path, dtype")
        if variant not in VARIANTS:
            raise DecoderError(f"decoder {label!r}: unknown variant {variant!r}", f"one of {', '.join(VARIANTS)}")
        self.variant = VARIANTS[variant]
        self.folder = Path(path).expanduser() if path is not None else None
        self.backend = "pth" if self.folder is not None else "store"
        super().__init__(label, device, variant=variant, dtype=dtype,
                         **({"path": str(self.folder)} if self.folder is not None else {}))
        self.dtype = parse_dtype(dtype, self.name)
        self._nets: tuple[torch.nn.Module, torch.nn.Module] | None = None
        self._sha: dict[str, str] = {}
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (latents, pixels) of the last decode

    @property
    def latent_channels(self) -> int:
        return self.variant.channels

    @property
    def factor(self) -> int:
        """Pixels per latent cell along each side (8)."""
        return FACTOR

    # -- files --------------------------------------------------------------------------------------------------
    def files(self) -> tuple[Path, Path]:
        """(encoder file, decoder file); :class:`WeightsMissingError` with the fix when absent."""
        if self.folder is None:
            from qa.weights import require

            if self.variant.name not in STORE_NAMES:
                raise WeightsMissingError(self._needs_path())
            enc_name, dec_name = STORE_NAMES[self.variant.name]
            return require(enc_name), require(dec_name)
        pair = (self.folder / f"{self.variant.name}_encoder.pth", self.folder / f"{self.variant.name}_decoder.pth")
        for f in pair:
            if not f.is_file():
                raise WeightsMissingError(f"{f}: not found",
                                          f"`path` must hold the released {pair[0].name} and {pair[1].name}")
        return pair

    def _needs_path(self) -> str:
        v = self.variant.name
        return (f"decoder {self.name!r}: variant {v!r} needs `path`, a folder with {v}_encoder.pth and "
                f"{v}_decoder.pth (the weights store knows only {', '.join(STORE_NAMES)}); e.g. in qa.toml: "
                f"[decoders.{v}] family = \"taesd\", variant = \"{v}\", path = \"FOLDER\"")

    def unavailable_reason(self) -> str | None:
        if self.folder is None and self.variant.name not in STORE_NAMES:
            return self._needs_path()
        if self.folder is None:
            from qa.weights import unavailable_reason

            return unavailable_reason(STORE_NAMES[self.variant.name])
        try:
            self.files()
        except WeightsMissingError as exc:
            return str(exc)
        return None

    def _file_sha(self, which: int) -> str:
        key = ("encoder", "decoder")[which]
        if key not in self._sha:
            self._sha[key] = files_sha256([self.files()[which]])
        return self._sha[key]

    def weights_sha256(self) -> str:
        """sha256 of the decoder file (the encoder's is the run's ``encoder_sha256``)."""
        return self._file_sha(1)

    def encoder_sha256(self) -> str:
        return self._file_sha(0)

    @property
    def nets(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(encoder, decoder) networks, loaded on first use."""
        if self._nets is None:
            enc, dec = load_halves(*self.files(), self.variant)
            cl = torch.channels_last  # about 20% faster than NCHW for these 3x3 convolutions on a CPU
            self._nets = (enc.to(self.device, self.dtype).to(memory_format=cl),
                          dec.to(self.device, self.dtype).to(memory_format=cl))
        return self._nets

    # -- encode / decode ----------------------------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        return TAESDEncoder(self)

    @torch.no_grad()
    def encode_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1], H and W multiples of 8 -> raw latents (N, C, H/8, W/8), float32 on the
        input's device."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise DecoderError(f"encoder of {self.name!r}: images must be (N, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-2] % FACTOR or images.shape[-1] % FACTOR:
            raise DecoderError(f"encoder of {self.name!r}: image size {tuple(images.shape[-2:])} is not a "
                               f"multiple of {FACTOR}", f"crop references to multiples of {FACTOR}")
        z = self.nets[0](images.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last))
        return z.float().to(images.device).contiguous()

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw latents (N, C, h, w) -> pixels (N, 3, 8h, 8w) clamped to [0, 1], float32 on the latents' device."""
        last = self._last
        if last is not None and last[0].shape == latents.shape and torch.equal(last[0], latents):
            return last[1].clone()  # the same latents again (e.g. the baseline after the decode): deterministic
        y: Any = self.nets[1](latents.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last))
        out = y.float().clamp(0.0, 1.0).to(latents.device).contiguous()
        self._last = (latents.detach().clone(), out.clone())
        return out

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        z = require_latents(batch, self.name, self.latent_channels)
        return finish(self.decode_latents(z), batch, self.name)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """The tiny decoder's decode is itself the plain decode of its latent (as for the ``vae`` family)."""
        return self.decode(batch, 0)


def taef2(name: str | None = None, device: str = "cpu", **settings: object) -> TAESDDecoder:
    """Registry target of ``taef2``: TAEF2 (FLUX.2 latent space, 32 channels) from the weights store."""
    settings.setdefault("variant", "taef2")
    return TAESDDecoder(name=name or "taef2", device=device, **settings)  # type: ignore[arg-type]
