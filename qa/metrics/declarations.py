"""What a metric declares, read without importing it: the one reader used by the gate, the report and ``qa metrics``.

A metric declares on its class (:class:`qa.metrics.base.Metric`) its direction (``higher_is_better``) or ``target``,
its ``value_range``, ``level``, ``needs``, ``weights``, ``unit``, ``description``, ``version`` and how its values are
``averaged`` (:mod:`qa.averaging`). A gate or a report
needs those, not the metric's code, and the code of most metrics imports torch. So a catalogue target
``"module:Class"`` (:mod:`qa.metrics.catalog`, built-in or from the ``qa.metrics`` entry-point group) is read from
the class's **source** with ``ast``: the module's file is located with importlib's path finder (no package
``__init__`` runs), the class and its bases (in ``qa.metrics.base`` or the plugin's own modules, re-exports
followed) are found, and the declared attributes are evaluated as literals: numbers, strings, tuples,
``float("inf")``, or module constants bound to such. Nothing is executed.

Where that is not possible the reader falls back, and says so in :attr:`Declaration.read`:

* ``"class"``: the target is already an object (a class registered at run time, or a plugin whose declarations
  are not literals): its attributes are read;
* ``"instance"``: the target is a factory function, not a class: it is imported and called once, as the engine
  would. This may import torch: a plugin that wants torch-free gates and reports registers its class.
"""

from __future__ import annotations

import ast
import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any, Literal

from qa.averaging import Averaged, check
from qa.errors import QAError
from qa.metrics.base import Level, Metric, Target, declared_target
from qa.metrics.catalog import METRICS

__all__ = ["Declaration", "MetricDeclarationError", "declaration"]

#: the class attributes a metric declares (see :class:`qa.metrics.base.Metric`)
DECLARED = ("name", "version", "higher_is_better", "target", "value_range", "level", "needs", "weights", "unit",
            "description", "averaged")
#: where every metric class's declarations start
METRIC_BASE = ("qa.metrics.base", "Metric")


class MetricDeclarationError(QAError):
    """A registered metric whose declaration cannot be read (its module or factory fails, or it is no Metric)."""


@dataclass(frozen=True)
class Declaration:
    """A metric's declaration. ``name``: its catalogue name; ``target``: what "better" means; ``read``: how it was
    read (``source``: from the class's source, nothing imported; ``class``/``instance``: see the module doc)."""

    name: str
    target: Target
    value_range: tuple[float, float]
    level: Level
    needs: tuple[str, ...]
    weights: tuple[str, ...]
    unit: str
    description: str
    version: str
    read: Literal["source", "class", "instance"]
    averaged: Averaged = "value"


def declaration(name: str) -> Declaration:
    """The declaration of the registered metric ``name`` (an alias is resolved).

    Raises :class:`~qa.errors.UnknownNameError` for a name nobody registered and :class:`MetricDeclarationError`
    for one that cannot be described."""
    canonical = METRICS.canonical(name)
    target = METRICS.target(canonical)
    try:
        return _cached(canonical, target)
    except TypeError:  # an unhashable registered object: read it uncached
        return _declaration(canonical, target)


def declared_unit(name: str) -> str:
    """The unit metric ``name`` declares, for a label beside its numbers ('' when it declares none, is not
    registered here or cannot be described)."""
    try:
        return declaration(name).unit
    except QAError:
        return ""


@lru_cache(maxsize=1024)
def _cached(name: str, target: Any) -> Declaration:
    """Cached per (name, target): registering another target under a name (a test, a plugin) reads it afresh."""
    return _declaration(name, target)


def _declaration(name: str, target: Any) -> Declaration:
    if isinstance(target, str):
        attrs = _from_source(target)
        if attrs is not None:
            return _make(name, attrs, "source")
        try:
            target = METRICS.factory(name)
        except Exception as exc:  # noqa: BLE001 - a plugin that cannot be imported is undescribable, not a crash
            raise MetricDeclarationError(f"metric {name!r} cannot be imported: {type(exc).__name__}: {exc}") from exc
    if isinstance(target, type):
        if not issubclass(target, Metric):
            raise MetricDeclarationError(f"metric {name!r} is registered as {target.__name__}, not a Metric class")
        return _make(name, {a: getattr(target, a) for a in DECLARED}, "class")
    try:
        built = target()
    except Exception as exc:  # noqa: BLE001 - an unbuildable metric is undescribable, not a crash
        raise MetricDeclarationError(f"metric {name!r} cannot be built: {type(exc).__name__}: {exc}") from exc
    if not isinstance(built, Metric):
        raise MetricDeclarationError(f"metric {name!r}: its factory returned {type(built).__name__}, not a Metric")
    return _make(name, {a: getattr(built, a) for a in DECLARED}, "instance")


def _make(name: str, attrs: dict[str, Any], read: Literal["source", "class", "instance"]) -> Declaration:
    try:
        lo, hi = (float(x) for x in attrs["value_range"])
        target = declared_target(attrs["target"], attrs["higher_is_better"])
        averaged = check(str(attrs["averaged"]))
        if averaged == "noise_power" and target.kind != "higher":
            raise ValueError(f"averaged = 'noise_power' is for a decibel ratio of signal to noise power, which is "
                             f"higher-is-better; this metric's target is {target.label()!r}")
        return Declaration(
            name=name, target=target, value_range=(lo, hi),
            level=attrs["level"], needs=tuple(attrs["needs"]), weights=tuple(attrs["weights"]),
            unit=str(attrs["unit"] or ""), description=str(attrs["description"] or ""), version=str(attrs["version"]),
            read=read, averaged=averaged)
    except (TypeError, ValueError) as exc:
        raise MetricDeclarationError(f"metric {name!r} declares a bad value: {exc}") from exc


# -- reading a class from its source ------------------------------------------------------------------------------


class _NotStatic(Exception):
    """The source does not say it with literals (a computed attribute, a base that cannot be found, no source)."""


@dataclass(frozen=True)
class _Module:
    name: str
    tree: ast.Module
    package: str  # the package relative imports start from


@lru_cache(maxsize=256)
def _module(name: str) -> _Module:
    """The parsed source of module ``name``, located without importing it or its parent packages."""
    parts = name.split(".")
    spec = importlib.util.find_spec(parts[0]) if parts[0] else None  # a top-level name: no package runs
    for i in range(1, len(parts)):
        locations = spec.submodule_search_locations if spec is not None else None
        if not locations:
            raise _NotStatic(f"no package {'.'.join(parts[:i])}")
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), list(locations))
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise _NotStatic(f"no Python source for module {name}")
    path = Path(spec.origin)
    is_package = spec.submodule_search_locations is not None
    return _Module(name, ast.parse(path.read_text(encoding="utf-8"), str(path)),
                   name if is_package else name.rpartition(".")[0])


def _binding(mod: _Module, name: str) -> ast.stmt | None:
    """The last top-level statement of ``mod`` that binds ``name`` (a class, an import, an assignment)."""
    found: ast.stmt | None = None
    for node in mod.tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            found = node
        elif isinstance(node, ast.ImportFrom | ast.Import) and any((a.asname or a.name.split(".")[0]) == name
                                                                  for a in node.names):
            found = node
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            found = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            found = node
    return found


def _absolute(mod: _Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(name: str) -> bool:
    try:
        _module(name)
    except (_NotStatic, OSError, SyntaxError):
        return False
    return True


def _resolve(mod: _Module, name: str, depth: int = 0) -> tuple[_Module, ast.ClassDef] | _Module:
    """What ``name`` means at the top level of ``mod``: a class definition (with its module) or a module."""
    if depth > 20:
        raise _NotStatic(f"{mod.name}.{name}: too many re-exports")
    node = _binding(mod, name)
    if isinstance(node, ast.ClassDef):
        return mod, node
    if isinstance(node, ast.ImportFrom):
        alias = next(a for a in node.names if (a.asname or a.name) == name)
        source = _absolute(mod, node)
        if _is_module(f"{source}.{alias.name}"):
            return _module(f"{source}.{alias.name}")
        return _resolve(_module(source), alias.name, depth + 1)
    if isinstance(node, ast.Import):
        alias = next(a for a in node.names if (a.asname or a.name.split(".")[0]) == name)
        return _module(alias.name if alias.asname else alias.name.split(".")[0])
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):  # Alias = Class
        return _resolve(mod, node.value.id, depth + 1)
    raise _NotStatic(f"{mod.name}.{name} is not a class defined in source")


def _class(mod: _Module, expr: ast.expr) -> tuple[_Module, ast.ClassDef]:
    """The class a base-class expression (``Name``, ``module.Name``, ``Generic[T]``) names."""
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Name):
        found = _resolve(mod, expr.id)
    elif isinstance(expr, ast.Attribute):
        owner = _class_or_module(mod, expr.value)
        if not isinstance(owner, _Module):
            raise _NotStatic(f"{mod.name}: base {ast.unparse(expr)} is a nested class")
        found = _resolve(owner, expr.attr)
    else:
        raise _NotStatic(f"{mod.name}: base {ast.unparse(expr)} is not a name")
    if isinstance(found, _Module):
        raise _NotStatic(f"{mod.name}: base {ast.unparse(expr)} is a module")
    return found


def _class_or_module(mod: _Module, expr: ast.expr) -> tuple[_Module, ast.ClassDef] | _Module:
    if isinstance(expr, ast.Name):
        return _resolve(mod, expr.id)
    if isinstance(expr, ast.Attribute):
        owner = _class_or_module(mod, expr.value)
        if isinstance(owner, _Module):
            return _resolve(owner, expr.attr)
    raise _NotStatic(f"{mod.name}: {ast.unparse(expr)} is not a module path")


_Key = tuple[str, str]  # (module, class name)


def _mro(mod: _Module, cls: ast.ClassDef, seen: frozenset[_Key] = frozenset()) -> list[tuple[_Module, ast.ClassDef]]:
    """The class's method resolution order (C3, as Python computes it), from its source, ending at
    :class:`qa.metrics.base.Metric` (which declares every attribute; its own bases declare none)."""
    key = (mod.name, cls.name)
    if key in seen:
        raise _NotStatic(f"{mod.name}.{cls.name}: inherits from itself")
    bases = [] if key == METRIC_BASE else [_class(mod, b) for b in cls.bases]
    sequences = [_mro(m, c, seen | {key}) for m, c in bases] + [list(bases)]
    out = [(mod, cls)]
    while any(sequences):
        sequences = [s for s in sequences if s]
        for seq in sequences:
            head = seq[0]
            hk = (head[0].name, head[1].name)
            if not any(hk in [(m.name, c.name) for m, c in s[1:]] for s in sequences):
                break
        else:
            raise _NotStatic(f"{mod.name}.{cls.name}: no consistent method resolution order")
        out.append(head)
        sequences = [s[1:] if (s[0][0].name, s[0][1].name) == hk else s for s in sequences]
    return out


def _literal(mod: _Module, node: ast.expr, depth: int = 0) -> Any:
    """The value of a literal expression: constants, tuples/lists, unary +/-, ``float("inf")``, module constants."""
    if depth > 20:
        raise _NotStatic("constant chain too long")
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_literal(mod, e, depth + 1) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _literal(mod, node.operand, depth + 1)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).strip().lower() in ("inf", "+inf", "-inf", "nan", "infinity", "-infinity")):
        return float(str(node.args[0].value))
    if isinstance(node, ast.Name):
        return _constant(mod, node.id, depth + 1)
    raise _NotStatic(f"{mod.name}: {ast.unparse(node)} is not a literal")


def _constant(mod: _Module, name: str, depth: int) -> Any:
    """The literal value of the module constant ``name``, bound in ``mod`` or imported into it."""
    bound = _binding(mod, name)
    if isinstance(bound, ast.Assign | ast.AnnAssign) and bound.value is not None:
        return _literal(mod, bound.value, depth)
    if isinstance(bound, ast.ImportFrom):
        alias = next(a for a in bound.names if (a.asname or a.name) == name)
        return _constant(_module(_absolute(mod, bound)), alias.name, depth + 1)
    raise _NotStatic(f"{mod.name}: {name} is not a module constant")


def _class_attrs(mod: _Module, cls: ast.ClassDef) -> dict[str, ast.expr]:
    out: dict[str, ast.expr] = {}
    for node in cls.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = node.value
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in DECLARED:
            out[node.name] = node  # type: ignore[assignment]  # a property: computed, not declared
    return out


def _from_source(target: str) -> dict[str, Any] | None:
    """The declared attributes of the class ``"module:Class"`` from its source, or None where the source does not
    say them with literals (the caller then imports the target)."""
    module, _, attr = target.partition(":")
    try:
        found = _resolve(_module(module), attr) if attr and "." not in attr else None
        if not isinstance(found, tuple):
            return None
        mro = _mro(*found)
        if METRIC_BASE not in [(m.name, c.name) for m, c in mro]:
            return None
        values: dict[str, Any] = {}
        for name in DECLARED:
            for m, c in mro:
                expr = _class_attrs(m, c).get(name)
                if expr is not None:
                    if not isinstance(expr, ast.expr):
                        return None
                    values[name] = _literal(m, expr)
                    break
        value_range = values.get("value_range")
        if not (isinstance(value_range, tuple) and len(value_range) == 2
                and all(isinstance(x, int | float) and not math.isnan(x) for x in value_range)):
            return None
        return values if set(values) == set(DECLARED) else None
    except (_NotStatic, OSError, SyntaxError, ImportError, ValueError):
        return None
