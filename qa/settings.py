"""qa's settings, resolved once into one frozen object: ``[tool.qa]`` in pyproject.toml, ``qa.toml`` and the
environment.

| setting | source (first wins) | default |
|---|---|---|
| ``db`` | ``$QA_DB`` | ``reports/qa.duckdb`` (relative to the working directory) |
| ``weights_dir`` | ``$QA_WEIGHTS_DIR`` | ``~/.cache/qa/weights`` |
| ``ray_workers`` | ``$QA_RAY_WORKERS`` | None (the cluster's GPUs or CPUs) |
| ``decoders`` | ``qa.toml`` ``[decoders.NAME]``, then pyproject ``[tool.qa.decoders.NAME]`` | none |
| ``trusted_keys`` | ``qa.toml`` ``trusted_keys = "FILE"``, then pyproject ``[tool.qa] trusted_keys`` (relative to that file); ``$QA_TRUSTED_KEYS`` and ``--trusted-keys`` win over it | none |
| ``max_image_pixels`` | ``qa.toml`` / ``[tool.qa]`` ``max_image_pixels`` (width x height, >= 1) | 64 Mpx (64,000,000) |
| ``suites_dirs`` | ``<project>/suites``, then the ``suites/`` of the qa source tree | |
| ``reference_set_dirs`` | ``<project>/reference_sets``, then the ``reference_sets/`` of the qa source tree | |

Keys these files do not know are refused with the closest known name; values of the wrong type or out of range
are refused in one line (:class:`ConfigError`, exit 2).

``<project>`` is the folder holding ``qa.toml`` / ``pyproject.toml``: the working directory unless given. The qa
source tree is the folder above the ``qa`` package (a checkout or an editable install ships ``suites/`` and
``reference_sets/default`` there), found from this file, never from the working directory.

:func:`get_settings` resolves once per distinct input (working directory, the environment variables above and
the two configuration files' modification times), so nothing re-reads a file on every call while a test (or a
long-lived process) that changes its directory or environment still sees the change.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from qa.errors import QAError
from qa.plain_text import refusal

#: environment variables qa reads (and nothing else of the environment decides a setting)
DB_ENV = "QA_DB"
WEIGHTS_ENV = "QA_WEIGHTS_DIR"
WORKERS_ENV = "QA_RAY_WORKERS"
ENV_VARS = (DB_ENV, WEIGHTS_ENV, WORKERS_ENV)
#: the default database, relative to the working directory
DEFAULT_DB = Path("reports/qa.duckdb")
#: the qa source tree: the folder holding the ``qa`` package (suites/ and reference_sets/ live beside it)
SOURCE_ROOT = Path(__file__).resolve().parent.parent


#: the default largest image qa decodes (width x height): 64 Mpx, above an 8K frame (7680 x 4320 = 33 Mpx)
DEFAULT_MAX_PIXELS = 64_000_000
#: the keys of ``[tool.qa]`` (pyproject.toml) and of qa.toml's top level
TOP_KEYS = ("decoders", "trusted_keys", "max_image_pixels", "tool")

#: settings whose string values are file system paths (resolved against the configuring file's folder)
PATH_SETTINGS: frozenset[str] = frozenset({"path", "checkpoint", "vae_path", "config_file", "repo", "text_encoder_path"})


class ConfigError(QAError):
    """A configuration file that cannot be parsed or holds an invalid decoder entry."""


@dataclass(frozen=True)
class DecoderConfig:
    """One configured decoder: its ``family`` (a registry name), settings, and the file that said so."""

    name: str
    family: str
    settings: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc


def _entries(path: Path, table: object) -> dict[str, DecoderConfig]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: the decoders table must be a table of tables, got {type(table).__name__}")
    out = {}
    for name, entry in table.items():
        if refused := refusal("decoder name", name):
            raise ConfigError(f"{path}: {refused}")
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: decoder {name!r} must be a table ([...decoders.{name}]), got {entry!r}")
        settings = dict(entry)
        family = settings.pop("family", name)
        if not isinstance(family, str) or not family:
            raise ConfigError(f"{path}: decoder {name!r}: family must be a registered decoder name, got {family!r}")
        for key in PATH_SETTINGS & settings.keys():
            value = settings[key]
            if not isinstance(value, str):
                raise ConfigError(f"{path}: decoder {name!r}: {key} must be a string path, got {value!r}")
            p = Path(value).expanduser()
            settings[key] = str(p if p.is_absolute() else (path.parent / p).resolve())
        out[name] = DecoderConfig(name=name, family=family, settings=settings, source=path)
    return out


def _tables(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(file, its qa table) of pyproject.toml ``[tool.qa]`` and qa.toml (its top level, or its ``[tool.qa]``), in
    that order; unknown keys refused with the closest known one."""
    from qa.errors import did_you_mean

    out = []
    pyproject, qa_toml = root / "pyproject.toml", root / "qa.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {})
        table = tool.get("qa", {}) if isinstance(tool, dict) else {}
        out.append((pyproject, table if isinstance(table, dict) else {}))
    if qa_toml.is_file():
        data = _read_toml(qa_toml)
        tool = data.get("tool", {})
        nested = tool.get("qa", {}) if isinstance(tool, dict) else {}
        out.append((qa_toml, {**(nested if isinstance(nested, dict) else {}), **{k: v for k, v in data.items() if k != "tool"}}))
    for path, table in out:
        for key in table:
            if key not in TOP_KEYS or key == "tool":
                hint = did_you_mean(str(key), [k for k in TOP_KEYS if k != "tool"]) or \
                    f"known keys: {', '.join(k for k in TOP_KEYS if k != 'tool')}"
                raise ConfigError(f"{path}: unknown qa setting {key!r}", hint)
    return out


def read_decoder_configs(root: Path) -> dict[str, DecoderConfig]:
    """Configured decoders of the project folder ``root``: pyproject.toml ``[tool.qa.decoders]``, then qa.toml."""
    configs: dict[str, DecoderConfig] = {}
    for path, table in _tables(root):
        configs.update(_entries(path, table.get("decoders")))
    return configs


def _trusted_keys(root: Path) -> Path | None:
    found = None
    for path, table in _tables(root):
        if "trusted_keys" in table:
            value = table["trusted_keys"]
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{path}: trusted_keys must be a file path (a string), got {value!r}")
            p = Path(value).expanduser()
            found = p if p.is_absolute() else (path.parent / p).resolve()
    return found


def _max_pixels(root: Path) -> int:
    found = DEFAULT_MAX_PIXELS
    for path, table in _tables(root):
        if "max_image_pixels" in table:
            value = table["max_image_pixels"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{path}: max_image_pixels must be a whole number of pixels >= 1, got {value!r}")
            found = value
    return found


@dataclass(frozen=True)
class Settings:
    """Every setting qa reads from outside the command line; see the module docstring for the sources."""

    project: Path
    db: Path
    weights_dir: Path
    ray_workers_text: str | None
    decoders: Mapping[str, DecoderConfig]
    suites_dirs: tuple[Path, ...]
    reference_set_dirs: tuple[Path, ...]
    trusted_keys: Path | None = None
    max_image_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def ray_workers(self) -> int | None:
        """``$QA_RAY_WORKERS`` as a number of workers (None when unset); QAError when it is not one."""
        raw = self.ray_workers_text
        if not raw:
            return None
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise QAError(f"${WORKERS_ENV}={raw!r} is not a positive number of workers",
                          f"set {WORKERS_ENV} to an integer >= 1, or unset it")
        return n


def _dirs(project: Path, name: str) -> tuple[Path, ...]:
    return tuple(dict.fromkeys([project / name, SOURCE_ROOT / name]))


def resolve_settings(project: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings now: ``project`` (default: the working directory) holds qa.toml / pyproject.toml;
    ``environ`` (default: ``os.environ``) the variables. Raises :class:`QAError` for a bad file or value."""
    env = os.environ if environ is None else environ
    root = Path(project) if project is not None else Path.cwd()
    weights = env.get(WEIGHTS_ENV)
    return Settings(
        project=root,
        db=Path(env.get(DB_ENV) or str(DEFAULT_DB)),
        weights_dir=Path(weights).expanduser() if weights else Path.home() / ".cache" / "qa" / "weights",
        ray_workers_text=env.get(WORKERS_ENV),
        decoders=MappingProxyType(read_decoder_configs(root)),
        suites_dirs=_dirs(root, "suites"),
        reference_set_dirs=_dirs(root, "reference_sets"),
        trusted_keys=_trusted_keys(root),
        max_image_pixels=_max_pixels(root),
    )


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=8)
def _cached(project: str, env: tuple[tuple[str, str | None], ...], stamps: Any) -> Settings:
    return resolve_settings(project, {k: v for k, v in env if v is not None})


def get_settings(project: str | Path | None = None) -> Settings:
    """The settings for ``project`` (default: the working directory), resolved once per distinct input."""
    root = Path(project) if project is not None else Path.cwd()
    env = tuple((k, os.environ.get(k)) for k in ENV_VARS) + (("HOME", os.environ.get("HOME")),)
    stamps = (_stamp(root / "pyproject.toml"), _stamp(root / "qa.toml"))
    return _cached(str(root), env, stamps)
