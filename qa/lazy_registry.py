"""The lazy name registry behind the decoder and metric catalogues (:mod:`qa.decoders.catalog`,
:mod:`qa.metrics.catalog`): names -> ``"module:attr"`` targets, fed by built-ins and an entry-point group.

Entries stay strings until :meth:`Registry.factory` is called, so listing names (or reading a metric's
declaration, :mod:`qa.metrics.declarations`) never imports torch-heavy modules. Unknown names raise
:class:`UnknownNameError` with close matches ("did you mean ...").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from qa.errors import QAError, UnknownNameError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories. ``group`` is the entry-point group that third-party packages use."""

    def __init__(self, kind: str, group: str, builtins: dict[str, str] | None = None) -> None:
        """``builtins``: name -> ``"module:attr"`` of the members qa ships (plugins come from ``group``)."""
        self.kind = kind
        self.group = group
        self._targets: dict[str, str | Callable[..., T]] = dict(builtins or {})
        #: "module:attr" -> the object it named, once imported (the target itself stays a string: see target())
        self._imported: dict[str, Callable[..., T]] = {}
        self._loaded_entry_points = False
        self._aliases: dict[str, str] = {}

    def alias(self, alias: str, name: str) -> None:
        """Let ``alias`` (a name users type, e.g. ``lpips``) stand for the registered ``name`` (``lpips_alex``).
        Aliases resolve in :meth:`factory` and ``in``; :meth:`names` lists canonical names only."""
        if alias in self._targets:
            raise QAError(f"{self.kind} alias {alias!r} is already a registered name", "pick another alias")
        self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        """``name`` with an alias resolved (unknown names come back unchanged)."""
        return name if name in self._targets else self._aliases.get(name, name)

    def aliases(self) -> dict[str, str]:
        """alias -> canonical name."""
        return dict(self._aliases)

    def register(self, name: str, target: str | Callable[..., T]) -> None:
        """Register ``target`` (a ``"module:attr"`` string or a callable returning a ``T``) under ``name``."""
        if name in self._targets and self._targets[name] != target:
            raise QAError(f"{self.kind} {name!r} is registered twice", "rename one of them")
        self._targets[name] = target

    def _ensure_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._targets:
                self._targets[ep.name] = ep.value

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._ensure_entry_points()
        return sorted(self._targets)

    def __contains__(self, name: object) -> bool:
        self._ensure_entry_points()
        return name in self._targets or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def target(self, name: str) -> str | Callable[..., T]:
        """What ``name`` (or its alias) is registered as, without importing it: a ``"module:attr"`` string, or
        the callable registered directly (a test's class, an imported factory). Raises :class:`UnknownNameError`."""
        self._ensure_entry_points()
        canonical = self.canonical(name)
        if canonical not in self._targets:
            raise self._unknown(canonical)
        return self._targets[canonical]

    def _unknown(self, name: str) -> UnknownNameError:
        hint = did_you_mean(name, self._targets)
        known = ", ".join(sorted(self._targets))
        return UnknownNameError(f"unknown {self.kind} {name!r} (known: {known})", hint)

    def factory(self, name: str) -> Callable[..., T]:
        """The callable registered as ``name``; raises :class:`UnknownNameError` with suggestions."""
        self._ensure_entry_points()
        name = self.canonical(name)
        if name not in self._targets:
            raise self._unknown(name)
        target = self._targets[name]
        if not isinstance(target, str):
            return target
        if target not in self._imported:
            module_name, _, attr = target.partition(":")
            obj = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._imported[target] = obj  # type: ignore[assignment]
        return self._imported[target]

    def create(self, key: str, /, **kwargs: object) -> T:
        """Instantiate ``name`` with keyword settings."""
        return self.factory(key)(**kwargs)
