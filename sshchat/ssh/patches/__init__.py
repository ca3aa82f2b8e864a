"""Our patches of asyncssh, and the start-up gate that lets them all in or none.

Each patch is a module here with a note on what asyncssh does, what we
change and what it gains, a ``TOUCHES`` list of every asyncssh name it
reads, writes or replaces (see touch.py), and ``install``/``uninstall``.
Nothing of asyncssh's state is kept outside asyncssh: a patch either
replaces one of its functions or reads and writes its attributes where
asyncssh's own code would.

The gate, run by ``install()`` at every server start, with every patch
out: (a) the installed asyncssh is one of CHECKED_VERSIONS, the exact
releases (patch level included) these patches were read and tested
against; (b) every name every patch touches is there, of the expected
kind. If any check fails (a check that raises counts as failed), no
patch goes in, one log line says which checks failed, and the server runs
on asyncssh as it is. Should a patch's own install raise, every patch is
taken out again and one log line says so: never half patched. The speed
patches (TRIMS) can also be turned off by the ``fast_path`` setting; the
bound on environment variables (BOUNDS) cannot, but it is behind the gate
like every patch, so when the gate is closed a second warning says that
it is off and what that means.
"""

from __future__ import annotations

import logging
from typing import Protocol

import asyncssh

from sshchat.ssh.patches import (
    bounded_receive,
    chacha_one_keystream,
    direct_write,
    env_bounds,
    gcm_one_context,
    ignore_only_for_cbc,
    lazy_mlkem,
    log_level_first,
    skip_login_reload,
)
from sshchat.ssh.patches.touch import Touch, check

log = logging.getLogger("sshchat")

# The asyncssh releases these patches were checked against, exactly. A new
# release (a security fix too) runs without them until it is added here,
# after reading what it changed in the touched code and running the tests.
CHECKED_VERSIONS = ("2.24.1",)


class Patch(Protocol):
    """What each patch module provides."""

    __name__: str
    TOUCHES: tuple[Touch, ...]

    def install(self) -> None: ...

    def uninstall(self) -> None: ...

    def installed(self) -> bool: ...


# Work asyncssh does that we leave out or do once (off with fast_path = false).
TRIMS: tuple[Patch, ...] = (
    ignore_only_for_cbc,
    direct_write,  # needs ignore_only_for_cbc: it writes packets as asyncssh does with that patch
    gcm_one_context,
    chacha_one_keystream,
    skip_login_reload,
    lazy_mlkem,
    log_level_first,
)
# Limits asyncssh leaves to the application.
BOUNDS: tuple[Patch, ...] = (env_bounds, bounded_receive)
ALL: tuple[Patch, ...] = TRIMS + BOUNDS
# Patches that serve client connections too, packets byte for byte the
# same: what the load generator's clients use.
FOR_CLIENTS: tuple[Patch, ...] = (gcm_one_context, chacha_one_keystream, log_level_first)

_state = "not installed"


def name(patch: Patch) -> str:
    return patch.__name__.rsplit(".", 1)[-1]


def problems(version: str | None = None) -> list[str]:
    """Every failed check of the gate, in words (none: the patches may go
    in). asyncssh's own code is what is checked: patches in place are taken
    out for the checks and put back."""
    version = asyncssh.__version__ if version is None else version
    if version not in CHECKED_VERSIONS:
        return [f"asyncssh {version} is not one of the checked versions {', '.join(CHECKED_VERSIONS)}"]
    were_in = [patch for patch in ALL if patch.installed()]
    _take_all_out()
    found: list[str] = []
    try:
        for patch in ALL:
            for touch in patch.TOUCHES:
                problem = check(touch)
                if problem is not None and problem not in found:
                    found.append(problem)
    finally:
        if _install_all(were_in) is not None:
            found.append("the patches in place could not be put back")
    return found


# Logged, besides the line that says why, whenever the gate keeps env_bounds out.
ENV_BOUND_OFF = (
    "asyncssh patches off, so the bound on environment variables (env_bounds) is off too: "
    "a client may set any number of environment variables of any size on its session, "
    "all kept in server memory until the session ends"
)


# Logged, besides the line that says why, whenever the gate keeps bounded_receive out.
RECEIVE_BOUND_OFF = (
    "asyncssh patches off, so the bound on packet handling (bounded_receive) is off too: "
    "asyncssh's own work on a connection's packets (IGNORE packets, one byte a packet) is counted by no "
    "time budget, and one socket read's packets are all handled in one event-loop turn"
)


def install(trims: bool = True, patches: tuple[Patch, ...] | None = None) -> bool:
    """Run the gate and, if it passes, install the patches: ``patches``
    (default: the bounds, and the trims if ``trims``). Patches installed
    before and not asked for now are taken out. Returns whether they went
    in; if not (the gate failed, or a patch's install raised), everything
    is out and the log says why."""
    global _state
    uninstall()
    chosen = patches if patches is not None else (ALL if trims else BOUNDS)
    found = problems()
    failed = _install_all(chosen) if not found else None
    if failed is not None:
        found = [failed]
    if found:
        _state = "off: " + "; ".join(found)
        log.warning("asyncssh patches off: %s", "; ".join(found))
        if env_bounds in chosen:
            log.warning(ENV_BOUND_OFF)
        if bounded_receive in chosen:
            log.warning(RECEIVE_BOUND_OFF)
        return False
    _state = "on: " + ", ".join(name(p) for p in chosen)
    if not trims and patches is None:
        _state += " (fast_path = false)"
    return True


def _install_all(chosen: list[Patch] | tuple[Patch, ...]) -> str | None:
    """Install ``chosen``, in order. Should one raise, every patch is taken
    out again (asyncssh as it is, never half patched): returns why, else None."""
    for patch in chosen:
        try:
            patch.install()
        except Exception as e:  # a patch that cannot go in must not stop the server
            _take_all_out()
            return f"installing {name(patch)} failed ({type(e).__name__}: {e}); every patch taken out again"
    return None


def _take_all_out() -> None:
    """Every patch out, each tried even if another one's uninstall raises."""
    for patch in ALL:
        try:
            patch.uninstall()
        except Exception:  # logged; the others still come out
            log.exception("asyncssh patches: taking out %s failed", name(patch))


def uninstall() -> None:
    """Every patch out: asyncssh as it is."""
    global _state
    _take_all_out()
    _state = "not installed"


def installed() -> list[str]:
    """The names of the patches in place now."""
    return [name(p) for p in ALL if p.installed()]


def describe() -> str:
    """For the start-up log: which patches are on, or why none is."""
    return "asyncssh patches " + _state
