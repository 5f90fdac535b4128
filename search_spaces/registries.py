"""One registry for everything nas makes by name: block kinds, strategies, evaluators, datasets and
latency runtimes.

A `Registry` maps a name to an entry (a record or a factory) in registration order. It refuses a
second entry of one name, answers an unknown name with one line that offers close matches
(`search_spaces.errors.unknown`), lists its entries for help, and reads each entry's options once:
by default from the factory's signature (``inspect.signature``: names and defaults), so an option's
default is written in one place only, the factory's parameter list. A registry of records whose
options are data (a dataset's ``root``, a block kind's ``kernel``) reads them from the record.

It sits at the lowest layer (``search_spaces``) so that every layer above keeps its registries with
it; it imports nothing of nas.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from search_spaces.errors import RegistrationError, unknown

T = TypeVar("T")
_D = TypeVar("_D")


@dataclass(frozen=True)
class Option:
    """One option of an entry: its name and default (``None`` when it is required)."""

    name: str
    default: Any
    required: bool = False


@dataclass(frozen=True)
class Options:
    """What an entry takes: its options in order, whether it takes any other keyword (``open``:
    a ``**kwargs`` factory) and which of the registry's reserved parameters it takes (an evaluator's
    ``data``, a strategy's ``space``), which are not options a user sets."""

    options: tuple[Option, ...] = ()
    open: bool = False
    reserved: frozenset[str] = frozenset()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    @property
    def defaults(self) -> dict[str, Any]:
        """Option -> default, in order (required options map to None)."""
        return {o.name: o.default for o in self.options}

    def takes(self, parameter: str) -> bool:
        """Whether the entry takes the reserved ``parameter`` (an evaluator's ``data``)."""
        return parameter in self.reserved

    @classmethod
    def from_defaults(cls, defaults: Mapping[str, Any]) -> Options:
        """The options of a record that states them as data (``{"root": None, "download": False}``)."""
        return cls(tuple(Option(str(name), default) for name, default in defaults.items()))


def signature_options(factory: Callable[..., Any], reserved: Iterable[str] = ()) -> Options:
    """The keyword parameters of ``factory`` (a function or a class: its ``__init__``) as options;
    the names in ``reserved`` are noted, not listed; ``*args`` and positional-only ones are skipped."""
    reserved = frozenset(reserved)
    options: list[Option] = []
    open_, seen = False, set()
    for p in inspect.signature(factory).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            open_ = True
        elif p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        elif p.name in reserved:
            seen.add(p.name)
        else:
            required = p.default is p.empty
            options.append(Option(p.name, None if required else p.default, required))
    return Options(tuple(options), open_, frozenset(seen))


class Registry(Mapping[str, T], Generic[T]):
    """Entries of one sort by name, in registration order (see the module docstring).

    ``what`` names the sort in messages ("strategy 'mine' is registered already"), ``field`` the
    setting that names an entry where it differs (``data``: "unknown data 'cifar' (did you mean
    cifar10?)"). ``check(name, entry)`` refuses a malformed entry (raising `RegistrationError`);
    ``named(entry)`` is the name a record carries, under which `add` registers it (a dataset's, a
    runtime's); ``options(entry)`` reads an entry's options (default: its signature, less
    ``reserved``). With ``lazy``, an entry may be given as ``"module:attribute"`` and is imported
    when first looked up, so listing names imports nothing heavy.
    """

    def __init__(self, what: str, *, field: str | None = None, check: Callable[[str, T], None] | None = None,
                 named: Callable[[T], str] | None = None, options: Callable[[T], Options] | None = None,
                 reserved: Iterable[str] = (), lazy: bool = False) -> None:
        self.what = what
        self.field = field or what
        self._check = check
        self._named = named
        self._read_options = options
        self._reserved = frozenset(reserved)
        self._lazy = lazy
        self._entries: dict[str, T | str] = {}
        self._options: dict[str, Options] = {}  # read once per entry, on first request

    # -- registering ---------------------------------------------------------------------------------
    def register(self, name: str, entry: T | str) -> T | str:
        """Add ``entry`` as ``name``; a name registered already is refused, never replaced."""
        if not isinstance(name, str) or not name:
            raise RegistrationError(f"{self.what}: a registered name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise RegistrationError(f"{self.what} {name!r} is registered already; register it under another name")
        if isinstance(entry, str):
            if not self._lazy or ":" not in entry:
                raise RegistrationError(f"{self.what} {name!r}: expected an entry, got the string {entry!r}")
        else:
            self._check_entry(name, entry)
        self._entries[name] = entry
        return entry

    def add(self, entry: T) -> T:
        """Register a record under the name it carries (also a decorator)."""
        if self._named is None:
            raise RegistrationError(f"{self.what}: entries carry no name here; register(name, entry)")
        self.register(self._named(entry), entry)
        return entry

    def add_modules(self, modules: Iterable[str], attribute: str) -> None:
        """Add the records each module holds as ``attribute`` (one record or a tuple of them), in
        order: how the built-in ones are registered, one module each."""
        for module in modules:
            found = getattr(importlib.import_module(module), attribute)
            for entry in found if isinstance(found, tuple) else (found,):
                self.add(entry)

    def _check_entry(self, name: str, entry: T) -> None:
        if self._named is not None and self._named(entry) != name:
            raise RegistrationError(f"{self.what} {self._named(entry)!r} registered as {name!r}: "
                                    f"a {self.what} is registered under its own name")
        if self._check is not None:
            self._check(name, entry)

    @contextmanager
    def scratch(self, stand_ins: Mapping[str, T] | None = None) -> Iterator[Registry[T]]:
        """Entries registered inside the block are gone after it, and ``stand_ins`` take the place
        of registered entries of their names until then (for tests and experiments)."""
        entries, options = dict(self._entries), dict(self._options)
        for name, entry in (stand_ins or {}).items():
            if name not in self:  # a stand-in replaces an entry; it does not register one
                raise unknown(self.field, name, self.names())
            self._entries[name] = entry
            self._options.pop(name, None)
        try:
            yield self
        finally:
            self._entries, self._options = entries, options

    # -- looking up -----------------------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        """The entry ``name``; an unknown name is one line with close matches (UnknownNameError)."""
        if name not in self:  # also an unhashable value from a config file
            raise unknown(self.field, name, self.names())
        entry = self._entries[name]
        if isinstance(entry, str):  # a lazy reference: imported once, then kept
            module, _, attribute = entry.partition(":")
            resolved = getattr(importlib.import_module(module), attribute)
            self._check_entry(name, resolved)
            self._entries[name] = entry = resolved
        return entry

    @overload
    def get(self, name: str) -> T | None: ...
    @overload
    def get(self, name: str, default: _D) -> T | _D: ...

    def get(self, name: str, default: Any = None) -> Any:
        """The entry ``name``, or ``default`` (Mapping's get expects a KeyError, which [] is not)."""
        if name not in self:
            return default
        return self[name]

    def options(self, name: str) -> Options:
        """The options of entry ``name``, read once."""
        if name not in self._options:
            entry = self[name]
            self._options[name] = (self._read_options(entry) if self._read_options is not None
                                   else signature_options(entry, self._reserved))
        return self._options[name]

    def listing(self) -> list[str]:
        """One line per entry for help: ``name  option=default ...``."""
        lines = []
        for name in self.names():
            shown = " ".join(f"{o.name}=..." if o.required else f"{o.name}={o.default!r}"
                             for o in self.options(name).options)
            lines.append(f"{name}  {shown}".rstrip())
        return lines

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self.names())})"
