"""Checking a configured decoder's settings before it is built: unknown keys (with the closest known one),
wrong types and impossible values, each in one line naming the file (:class:`qa.settings.ConfigError`, exit 2).

The settings a family takes are the keyword parameters (``name`` and ``device`` aside) of its decoder class's
``__init__`` and those of the classes it inherits from; their types are those of the defaults (an ``int`` default
takes whole numbers, a ``float`` default any real number, ``bool`` and ``str`` their own). A factory that is a
function (which dispatches to a class) or a class that takes only ``**settings`` checks its own keys. Numeric settings whose name
says they count or scale something (``factor``, ``steps``, ``tile``, ``threads``) must be >= 1 and finite.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

from qa.errors import did_you_mean
from qa.settings import ConfigError

#: settings that count or scale something: a value below 1 is impossible
AT_LEAST_ONE = frozenset({"factor", "steps", "tile", "threads"})


def _params(factory: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    """(keyword parameters but name/device of the class and its bases, whether that list is the whole story: a
    class with named settings; a function factory or a class taking only ``**settings`` checks itself)."""
    if not isinstance(factory, type):
        return {}, False
    named: dict[str, inspect.Parameter] = {}
    for cls in factory.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        try:
            sig = inspect.signature(init)
        except (TypeError, ValueError):
            continue
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "name", "device"):
                named.setdefault(p.name, p)
    return named, bool(named)


def _type_problem(key: str, value: object, default: object) -> str:
    if default is None or default is inspect.Parameter.empty:
        return ""
    if isinstance(default, bool):
        return "" if isinstance(value, bool) else f"{key} must be true or false, got {value!r}"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return "" if ok else f"{key} must be a whole number, got {value!r}"
    if isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
        return "" if ok else f"{key} must be a finite number, got {value!r}"
    if isinstance(default, str):
        return "" if isinstance(value, str) else f"{key} must be a string, got {value!r}"
    return ""


def check_decoder_settings(name: str, family: str, factory: Any, settings: dict[str, Any],
                           source: Path | None) -> None:
    """Raise ConfigError (one line, the file named) for the first bad setting of decoder ``name``."""
    where = f"{source}: decoder {name!r}" if source else f"decoder {name!r}"
    params, complete = _params(factory)
    if complete:
        for key in settings:
            if key not in params:
                hint = did_you_mean(key, list(params)) or f"family {family!r} takes {', '.join(params) or 'no settings'}"
                raise ConfigError(f"{where}: unknown setting {key!r} (family {family!r})", hint)
    for key, value in settings.items():
        why = _type_problem(key, value, params[key].default) if key in params else ""
        if not why and key in AT_LEAST_ONE and isinstance(value, int | float) and not isinstance(value, bool) \
                and not value >= 1:
            why = f"{key} must be >= 1, got {value!r}"
        if why:
            raise ConfigError(f"{where}: {why}", "fix the setting in that file")


def family_defaults(factory: Any) -> dict[str, object]:
    """The settings a decoder class names with a default (``{}`` for a function factory): its defaults."""
    named, _ = _params(factory)
    return {k: p.default for k, p in named.items() if p.default is not inspect.Parameter.empty}
