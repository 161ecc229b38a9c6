"""A name → implementation registry: adding a plug-in is one file plus one `register` line.

    OBJECTIVES = Registry("objective")
    @OBJECTIVES.register("memit")
    class LeastSquares(Objective): ...
    OBJECTIVES.get("memit")      # → the registered entry
    OBJECTIVES.get("nope")       # → UnknownNameError listing the known names
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str, plural: str | None = None):
        self.kind = kind
        self.plural = plural or kind + "s"
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: Any = None) -> Callable[[T], T] | T:
        """Register `entry` under `name`; without `entry`, use as a decorator."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add if entry is None else add(entry)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known {self.plural}: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
