"""One registry class for every pluggable kind (estimators, policy losses, rewards, engines, ...).

A registry maps a name to an implementation; ``get`` also accepts ``module:qualname`` for an
implementation that was never registered (imported). What a config may set for an implementation is read
from its signature: every keyword parameter after the ``leading`` positional ones the caller always
passes, except the ``fixed`` names the caller also always passes. Its type for converting config
values is its annotation, else its default's type, else ``typing.Any``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import typing
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


def import_reference(reference: str) -> Any:
    """The object named by ``"module:qualname"`` (``"my_rewards:exact_match"``), imported."""
    module_name, _, qualname = reference.partition(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def configurable_parameters(implementation: Callable, leading: int = 0, fixed: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword parameters of ``implementation`` after its ``leading`` ones, except ``fixed``, with
    their defaults (``inspect.Parameter.empty`` for a required one)."""
    signature = inspect.signature(implementation)
    return {p.name: p.default for p in list(signature.parameters.values())[leading:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in fixed}


class Registry(Generic[T]):
    def __init__(self, kind: str, *, leading: int = 0, fixed: tuple[str, ...] = (), check: Callable[[str, T], None] | None = None):
        self.kind = kind
        self.leading = leading
        self.fixed = fixed
        self.check = check  # raises on an implementation this kind cannot use, at registration
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding an implementation under ``name`` (a name is registered once)."""

        def decorator(implementation: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if self.check is not None:
                self.check(name, implementation)
            self._entries[name] = implementation
            return implementation

        return decorator

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def available(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, implementation)`` in registration order."""
        return list(self._entries.items())

    def copy(self) -> "Registry[T]":
        """An independent registry with the same entries (tests register into a copy)."""
        duplicate = Registry(self.kind, leading=self.leading, fixed=self.fixed, check=self.check)
        duplicate._entries = dict(self._entries)
        return duplicate

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        """The implementation registered as ``name``, or the one ``module:qualname`` names (imported)."""
        if name in self._entries:
            return self._entries[name]
        if ":" in str(name):
            try:
                return import_reference(name)
            except Exception as error:  # a missing module or name, or one that fails on import
                raise KeyError(f"cannot import {self.kind} {name!r}: {type(error).__name__}: {error}") from None
        close = difflib.get_close_matches(str(name), self._entries, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown {self.kind} {name!r}{hint} (available: {', '.join(self.available())}; "
                       f"or module:name)") from None

    def problem(self, name: str) -> str | None:
        """Why ``get(name)`` would fail (unknown name, or a ``module:qualname`` that does not import),
        or None when it would not."""
        try:
            self.get(name)
        except KeyError as error:
            return error.args[0]
        return None

    def parameters(self, name: str) -> dict[str, Any]:
        """The configurable keyword parameters of ``name`` with their defaults (``inspect.Parameter.empty``
        for a required one)."""
        return configurable_parameters(self.get(name), self.leading, self.fixed)

    def parameter_types(self, name: str) -> dict[str, Any]:
        """Each configurable parameter's type, for converting config values."""
        implementation = self.get(name)
        try:
            hints = typing.get_type_hints(implementation.__init__ if inspect.isclass(implementation) else implementation)
        except (NameError, TypeError):  # an annotation naming something not importable at run time
            hints = {}
        return {parameter: hints.get(parameter, Any if default is None or default is inspect.Parameter.empty else type(default))
                for parameter, default in self.parameters(name).items()}
