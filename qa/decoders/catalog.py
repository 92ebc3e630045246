"""The decoder catalogue: every decoder name this installation knows, as a lazy ``"module:attr"`` target.

The built-in decoders are named here (listing names imports no adapter and no torch); third-party packages add
theirs through the entry-point group ``qa.decoders`` (a target is a callable returning a
:class:`~qa.decoders.base.Decoder`). Build a decoder by name with :func:`qa.decoders.factory.make_decoder`, which
applies the project's ``[tool.qa.decoders.NAME]`` configuration first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.lazy_registry import Registry

if TYPE_CHECKING:
    from qa.decoders.base import Decoder

DECODERS: Registry[Decoder] = Registry("decoder", "qa.decoders", {
    "identity": "qa.decoders.simple:IdentityDecoder",
    "bicubic": "qa.decoders.simple:BicubicDecoder",
    "vae": "qa.decoders.vae:VAEDecoder",
    "pid": "qa.decoders.pid:make_pid",
    "esrgan": "qa.decoders.esrgan:ESRGANDecoder",
    "esrgan-x4plus-anime": "qa.decoders.esrgan:x4plus_anime",
    "esrgan-anime-x2": "qa.decoders.esrgan:anime_x2",
    "esrgan-anime-x3": "qa.decoders.esrgan:anime_x3",
    "esrgan-anime-x4": "qa.decoders.esrgan:anime_x4",
    "taesd": "qa.decoders.taesd:TAESDDecoder",
    "taef2": "qa.decoders.taesd:taef2",
    "taef2+esrgan": "qa.decoders.taesd_esrgan:taef2_esrgan",
    "l2p": "qa.decoders.l2p:make_l2p",
    "ldm+vae": "qa.decoders.l2p:LDMVAEDecoder",
    "ldm+pid": "qa.decoders.l2p:LDMPiDDecoder",
})
