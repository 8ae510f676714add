"""`Registry`: the one way hwsim keeps named extension points.

Workload rules by op type, algorithms, backbones, hardware kinds, energy tables and lowerings
are each a `Registry`: entries are added once (a second entry under a name is a programming
error), looked up by name (an unknown name raises the registry's own error, listing what is
known), and a registry may name the modules whose import fills it, imported on first use.
It imports nothing of hwsim, so every layer may use it.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (`what`, e.g. "workload rule"). `error` is raised by `lookup`
    for an unknown name; `modules` are imported before the first read so that their entries
    register themselves."""

    def __init__(self, what: str, *, error: Callable[[str], Exception] = LookupError,
                 modules: tuple[str, ...] = ()) -> None:
        self.what = what
        self.error = error
        self._modules = modules
        self._loaded = not modules
        self._entries: dict[str, T] = {}

    # ---- adding ------------------------------------------------------------------------------
    def add(self, name: str, entry: T) -> T:
        old = self._entries.get(name)
        if old is not None and old is not entry:
            raise RuntimeError(f"two {self.what}s named {name!r}")
        self._entries[name] = entry
        return entry

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: `@REG.register("a", "b")` adds the decorated object under each name."""
        def add(entry: T) -> T:
            for name in names:
                self.add(name, entry)
            return entry
        return add

    # ---- reading -----------------------------------------------------------------------------
    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)

    def get(self, name: str) -> T | None:
        """The entry, or None (no error)."""
        entry = self._entries.get(name)
        if entry is None and not self._loaded:
            self._load()
            entry = self._entries.get(name)
        return entry

    def lookup(self, name: str) -> T:
        """The entry; `error` naming the unknown name and the known ones otherwise."""
        entry = self.get(name)
        if entry is None:
            raise self.error(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}")
        return entry

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
