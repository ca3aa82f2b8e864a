"""Self-test for tests/support/waiting.py: the waits return as soon as they
can and fail with what was awaited."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.waiting import eventually, stays_false


async def test_eventually_returns_once_true_and_takes_coroutines() -> None:
    loop = asyncio.get_running_loop()
    flag: list[bool] = []
    loop.call_later(0.05, flag.append, True)
    started = time.monotonic()
    await eventually(lambda: bool(flag), timeout=5)
    assert time.monotonic() - started < 1

    async def asked() -> bool:
        await asyncio.sleep(0)
        return True

    await eventually(asked)


async def test_eventually_fails_with_what_was_awaited() -> None:
    state = {"n": 0}
    with pytest.raises(AssertionError, match=r"not true within 0.05 s: n is 0"):
        await eventually(lambda: state["n"] > 0, timeout=0.05, message=lambda: f"n is {state['n']}")

    def the_thing() -> bool:
        return False

    with pytest.raises(AssertionError, match="the_thing"):
        await eventually(the_thing, timeout=0.01)


async def test_stays_false_watches_the_whole_window() -> None:
    await stays_false(lambda: False, for_=0.05)
    loop = asyncio.get_running_loop()
    happened: list[bool] = []
    loop.call_later(0.05, happened.append, True)
    with pytest.raises(AssertionError, match="became true within 1 s: it happened"):
        await stays_false(lambda: bool(happened), for_=1, message="it happened")
