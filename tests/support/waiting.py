"""Waiting in tests: for a condition, with a deadline; never for a guessed time.

A fixed sleep is either too short on a loaded machine (the test fails for
nothing) or too long everywhere else (the suite crawls), and it hides what
the test waits for. :func:`eventually` waits for the condition itself and
returns as soon as it holds. :func:`stays_false` is for the other kind of
claim, that something does NOT happen: that can only be watched for a
while, so the window is explicit at the call, with a comment saying why it
is long enough.

A predicate may be a plain function or a coroutine function (for checks
that must talk to the server, such as asking for ``/names``).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Predicate = Callable[[], "bool | Awaitable[bool]"]


async def _holds(predicate: Predicate) -> bool:
    result = predicate()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


def _describe(predicate: Predicate, message: str | Callable[[], str]) -> str:
    text = message() if callable(message) else message
    return text or getattr(predicate, "__name__", repr(predicate))


async def eventually(
    predicate: Predicate,
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str | Callable[[], str] = "",
) -> None:
    """Return once ``predicate()`` is true; AssertionError after ``timeout`` s.

    The predicate is checked at once, then every ``interval`` seconds (the
    poll only decides how soon the test notices, not whether it passes).
    ``message`` (or a function making it, to show the state at the time of
    failure) says what was awaited.
    """
    deadline = time.monotonic() + timeout
    while not await _holds(predicate):
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s: {_describe(predicate, message)}")
        await asyncio.sleep(interval)


async def stays_false(
    predicate: Predicate,
    *,
    for_: float,
    interval: float = 0.01,
    message: str | Callable[[], str] = "",
) -> None:
    """AssertionError as soon as ``predicate()`` becomes true within ``for_`` s.

    For "this does not happen" claims. The window is a judgement the caller
    states: long enough for the thing to have happened if the code were
    wrong (e.g. several loop turns and a round trip on loopback).
    """
    deadline = time.monotonic() + for_
    while True:
        if await _holds(predicate):
            raise AssertionError(f"became true within {for_} s: {_describe(predicate, message)}")
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)

