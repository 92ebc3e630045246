"""``make_decoder``: the decoder a name means on this machine (its configured family and settings, else the
catalogue entry of that name), and ``list_decoders`` for ``qa decoders``. The one way qa builds a decoder.

Read from the current working directory (or ``root``):

* ``pyproject.toml``: ``[tool.qa.decoders.NAME]`` tables;
* ``qa.toml``: ``[decoders.NAME]`` (or ``[tool.qa.decoders.NAME]``) tables; an entry here replaces the
  pyproject entry of the same name.

An entry names a registered ``family`` (default: NAME itself, so ``[tool.qa.decoders.pid]`` re-configures the
built-in ``pid``) and settings passed to that family's factory, e.g.::

    [tool.qa.decoders.pid]
    backend = "upstream"
    checkpoint = "/models/PiD_res2k_sr4x_official_flux_distill_4step/model_ema_bf16.pth"
    backbone = "flux"
    degrade_sigma = 0.2

    [tool.qa.decoders.sdxl-vae]
    family = "vae"
    path = "weights/sdxl-vae"          # relative paths are relative to the file that says them

:func:`make_decoder` resolves a name through the configuration first (read by :func:`qa.settings.get_settings`),
then the catalogue (:data:`qa.decoders.catalog.DECODERS`); :func:`list_decoders` describes every decoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qa.decoders.base import Decoder, DecoderInfo
from qa.decoders.catalog import DECODERS
from qa.decoders.settings_check import check_decoder_settings
from qa.errors import DecoderError, QAError, UnknownNameError, did_you_mean
from qa.settings import ConfigError, DecoderConfig, get_settings

__all__ = ["effective_settings", "list_decoders", "load_decoder_configs", "make_decoder", "settings_text"]

def load_decoder_configs(root: str | Path | None = None) -> dict[str, DecoderConfig]:
    """Configured decoders from ``root`` (default: the current directory): pyproject.toml, then qa.toml
    (read once per change of those files: :func:`qa.settings.get_settings`)."""
    return dict(get_settings(root).decoders)


def _unknown(name: str, known: list[str]) -> UnknownNameError:
    hint = did_you_mean(name, known) or "`qa decoders` lists them"
    return UnknownNameError(f"unknown decoder {name!r} (known: {', '.join(sorted(known))})", hint)


def make_decoder(name: str, device: str = "cpu", root: str | Path | None = None, **overrides: Any) -> Decoder:
    """The decoder called ``name``: its configured family and settings (``overrides`` win), else the registry
    entry of that name. Raises :class:`UnknownNameError` with close matches, :class:`ConfigError` or
    :class:`DecoderError` for bad entries. Weights load lazily, on the first encode/decode."""
    configs = load_decoder_configs(root)
    cfg = configs.get(name)
    family = cfg.family if cfg else name
    settings = {**(cfg.settings if cfg else {}), **overrides}
    if family not in DECODERS:
        if cfg is None:
            raise _unknown(name, sorted(set(DECODERS.names()) | set(configs)))
        raise ConfigError(
            f"{cfg.source}: decoder {name!r} names family {family!r}, which is not registered",
            f"families: {', '.join(DECODERS.names())}",
        )
    factory = DECODERS.factory(family)
    check_decoder_settings(name, family, factory, settings, cfg.source if cfg else None)
    try:
        decoder = factory(name=name, device=device, **settings)
    except QAError:
        raise
    except TypeError as exc:
        where = f" (configured in {cfg.source})" if cfg else ""
        raise DecoderError(f"decoder {name!r}{where}: bad settings {sorted(settings)}: {exc}") from exc
    if not isinstance(decoder, Decoder):
        raise DecoderError(f"decoder {name!r}: factory of {family!r} returned {type(decoder).__name__}, not a Decoder")
    return decoder


def list_decoders(device: str = "cpu", root: str | Path | None = None) -> list[DecoderInfo]:
    """Every registered and configured decoder, sorted by name, without loading any weights.

    A decoder that cannot even be constructed (bad settings, missing plugin module) is listed as unavailable
    with the error as its reason.
    """
    configs = load_decoder_configs(root)
    infos = []
    for name in sorted(set(DECODERS.names()) | set(configs)):
        try:
            infos.append(make_decoder(name, device=device, root=root).info())
        except Exception as exc:  # noqa: BLE001 - a listing must not die on one bad entry
            cfg = configs.get(name)
            family = cfg.family if cfg else name
            try:  # class attributes of the family, when its factory is a Decoder class
                cls: Any = DECODERS.factory(family)
            except Exception:  # noqa: BLE001
                cls = None
            cls = cls if isinstance(cls, type) and issubclass(cls, Decoder) else Decoder
            infos.append(
                DecoderInfo(
                    name=name, family=family,
                    backend=str((cfg.settings if cfg else {}).get("backend", cls.backend if cls is not Decoder else "?")),
                    track=cls.track, inputs=cls.inputs, stochastic=cls.stochastic, scale=cls.scale, available=False,
                    reason=f"{type(exc).__name__}: {exc}", settings=dict(cfg.settings) if cfg else {},
                )
            )
    return infos


def effective_settings(decoder: Decoder, overrides: dict[str, Any] | None = None,
                       root: str | Path | None = None) -> list[tuple[str, Any, str]]:
    """The settings ``decoder`` was built with, each as (key, value, where it comes from): ``--set`` for
    ``overrides``, the configuration file that says it, or ``default`` (the default its decoder class names; a
    default of None, "decided at run time", is left out).
    Sorted by key; what ``qa decoders`` and ``qa run`` print."""
    from qa.decoders.settings_check import family_defaults

    cfg = load_decoder_configs(root).get(decoder.name)
    out: dict[str, tuple[Any, str]] = {}
    for k, default in family_defaults(type(decoder)).items():
        v = decoder.settings.get(k, getattr(decoder, k, default))  # a variant's factory may set its own
        out[k] = (v, "default" if v == default else "set by the decoder")
    out = {k: (v, origin) for k, (v, origin) in out.items() if v is not None and isinstance(v, str | int | float)}
    if cfg is not None:
        out |= {k: (v, str(cfg.source)) for k, v in cfg.settings.items()}
    out |= {k: (v, "--set") for k, v in (overrides or {}).items()}
    return [(k, v, origin) for k, (v, origin) in sorted(out.items())]


def settings_text(settings: list[tuple[str, Any, str]]) -> str:
    """"degrade_sigma=0.3 (--set), factor=2 (default)": :func:`effective_settings` in one line."""
    return ", ".join(f"{k}={v!r} ({origin})" for k, v, origin in settings) or "none"
