"""What a patch touches in asyncssh, each kind with its own start-up check.

A patch lists every asyncssh name it reads, writes or replaces, as one of
the kinds below; the gate (``patches/__init__.py``) asks each for
``problem()`` before any patch goes in. The checks are cheap (an attribute
lookup, a signature, one pass over a function's bytecode, cached) and
answer one question each, in words for the log:

- ``Function``: the name is a function (or coroutine function) taking the
  parameters the patch calls it with or replaces it by;
- ``Class``: the name is a class;
- ``Value``: the name holds a value of a given type, or exactly a value;
- ``SetBy``: asyncssh's own function sets these instance attributes
  (``self.<name> = ...``): how attributes that exist only on live objects
  (a connection's sequence number, a channel's window) are checked
  without making one.

Names are written ``"module:qualified.name"``, e.g.
``"asyncssh.connection:SSHServerConnection.send_packet"``.

``check(touch)`` is how the gate asks: a check that raises (a new release
can make ``inspect.signature`` or an attribute lookup fail in ways no
check foresaw) is a failed check too, not a server that cannot start.
A patch replaces asyncssh's attributes through ``Swap``s, grouped in one
``Swaps`` that puts them in and takes them out together.
"""

from __future__ import annotations

import dis
import functools
import importlib
import inspect
from dataclasses import dataclass
from types import CodeType
from typing import Any, Protocol

_MISSING = object()


class Touch(Protocol):
    """One asyncssh name a patch relies on."""

    @property
    def path(self) -> str: ...

    def problem(self) -> str | None:
        """None if asyncssh has the name as the patch expects; else why not, in words."""


def check(touch: Touch) -> str | None:
    """``touch.problem()``, with any exception it raises turned into a
    problem that names the touch."""
    try:
        return touch.problem()
    except Exception as e:  # whatever a changed asyncssh makes the check trip over
        return f"{touch.path} could not be checked ({type(e).__name__}: {e})"


def lookup(path: str) -> Any:
    """The object ``"module:a.b.c"`` names, or _MISSING."""
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError:
        return _MISSING
    for part in qualname.split(".") if qualname else ():
        obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            break
    return obj


def params(func: Any) -> str:
    """A function's parameters as written, without defaults or annotations:
    ``(self, pkttype, *args, handler)``."""
    names = []
    for p in inspect.signature(func).parameters.values():
        prefix = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        names.append(prefix + p.name)
    return "(" + ", ".join(names) + ")"


@functools.lru_cache(maxsize=64)
def _stored_attributes(code: CodeType) -> frozenset[str]:
    """Every attribute name a function's code assigns (``x.name = ...``)."""
    return frozenset(i.argval for i in dis.get_instructions(code) if i.opname == "STORE_ATTR")


@dataclass(frozen=True)
class Function:
    """A function (a coroutine function with ``coroutine``), with ``params`` if given."""

    path: str
    params: str | None = None
    coroutine: bool = False

    def problem(self) -> str | None:
        obj = lookup(self.path)
        if obj is _MISSING:
            return f"{self.path} is missing"
        kind = "a coroutine function" if self.coroutine else "a function"
        if not inspect.isfunction(obj) or inspect.iscoroutinefunction(obj) != self.coroutine:
            return f"{self.path} is not {kind}"
        if self.params is not None and params(obj) != self.params:
            return f"{self.path} takes {params(obj)}, not {self.params}"
        return None


@dataclass(frozen=True)
class Class:
    """A class."""

    path: str

    def problem(self) -> str | None:
        obj = lookup(self.path)
        if obj is _MISSING:
            return f"{self.path} is missing"
        return None if isinstance(obj, type) else f"{self.path} is not a class"


@dataclass(frozen=True)
class Value:
    """A module or class attribute: of type ``kind``, or equal to ``equals``."""

    path: str
    kind: type | None = None
    equals: object = _MISSING

    def problem(self) -> str | None:
        obj = lookup(self.path)
        if obj is _MISSING:
            return f"{self.path} is missing"
        if self.kind is not None and not isinstance(obj, self.kind):
            return f"{self.path} is a {type(obj).__name__}, not a {self.kind.__name__}"
        if self.equals is not _MISSING and obj != self.equals:
            return f"{self.path} is {obj!r}, not {self.equals!r}"
        return None


@dataclass(frozen=True)
class SetBy:
    """Instance attributes that asyncssh's function ``path`` assigns; with
    ``only``, it assigns no others (a patch that replaces the function sets
    exactly these)."""

    path: str
    attrs: tuple[str, ...]
    only: bool = False

    def problem(self) -> str | None:
        obj = lookup(self.path)
        if obj is _MISSING:
            return f"{self.path} is missing"
        if not inspect.isfunction(obj):
            return f"{self.path} is not a function"
        stored = _stored_attributes(obj.__code__)
        missing = [a for a in self.attrs if a not in stored]
        if missing:
            return f"{self.path} no longer sets {', '.join(missing)}"
        extra = sorted(stored - set(self.attrs)) if self.only else []
        if extra:
            return f"{self.path} now also sets {', '.join(extra)}"
        return None


class Swap:
    """One attribute of an asyncssh class replaced by ours, and put back
    exactly as it was: where the class only inherited it, ours is removed
    again rather than the inherited one copied in."""

    def __init__(self, path: str, replacement: object) -> None:
        self.path = path
        self._replacement = replacement
        self._saved: object = _MISSING
        self.original: Any = None  # what the attribute was (as looked up) when ours went in
        self.on = False

    def _owner(self) -> tuple[Any, str]:
        module, _, qualname = self.path.partition(":")
        owner, _, name = qualname.rpartition(".")
        return lookup(f"{module}:{owner}"), name

    def install(self) -> None:
        if self.on:
            return
        owner, name = self._owner()
        self._saved = owner.__dict__.get(name, _MISSING)
        self.original = getattr(owner, name, None)
        setattr(owner, name, self._replacement)
        self.on = True

    def uninstall(self) -> None:
        """Put back what was there, unless someone replaced ours since
        (then theirs stays)."""
        if not self.on:
            return
        owner, name = self._owner()
        if owner.__dict__.get(name, _MISSING) is self._replacement:
            if self._saved is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, self._saved)
        self.on = False


class Swaps:
    """All the Swaps of one patch, in and out together: what each patch
    module's ``install``, ``uninstall`` and ``installed`` are.

    ``install`` puts them in in order; should one fail, those already in
    are taken out again before the error goes on, so a patch is never
    left half in. ``installed`` is true only when every one is in.
    """

    def __init__(self, *swaps: Swap) -> None:
        self.swaps = swaps

    def install(self) -> None:
        try:
            for swap in self.swaps:
                swap.install()
        except BaseException:
            self.uninstall()
            raise

    def uninstall(self) -> None:
        for swap in reversed(self.swaps):
            swap.uninstall()

    def installed(self) -> bool:
        return all(swap.on for swap in self.swaps)
