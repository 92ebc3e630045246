"""Parsing the `qa run` options that name metrics and decoder settings (shared by a new run and a resume)."""

from __future__ import annotations

from typing import Any

from qa.errors import QAError, UnknownNameError, did_you_mean


def metric_names(text: str | None) -> list[str] | None:
    """``--metrics a,b`` as registered metric names (aliases resolved; None when not given). An unknown name is an
    error (exit 2) naming every unknown one, with close matches and `qa metrics`."""
    from qa.metrics.catalog import METRICS

    names = [m.strip() for m in text.split(",") if m.strip()] if text else None
    unknown = [m for m in names or [] if m not in METRICS]
    if unknown:
        close = [hint for m in unknown if (hint := did_you_mean(m, METRICS.names()))]
        raise UnknownNameError(f"--metrics: unknown metric{'s' if len(unknown) > 1 else ''} "
                               f"{', '.join(repr(m) for m in unknown)}",
                               "; ".join([*close, "`qa metrics` lists the registered metrics"]))
    return [METRICS.canonical(m) for m in names] if names is not None else None


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as settings: VALUE read as a TOML value (0.3, 4, true, "text"), a bare word
    that is not TOML as a string. A repeated key: the last wins."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise QAError(f"--set {item!r}: expected KEY=VALUE with a setting name", "e.g. --set degrade_sigma=0.3")
        try:
            out[key] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw.strip()
    return out
