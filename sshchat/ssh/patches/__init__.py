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
kind. If any check fails, no patch goes in, one log line says which
checks failed, and the server runs on asyncssh as it is. The speed
patches (TRIMS) can also be turned off by the ``fast_path`` setting; the
bound on environment variables (BOUNDS) cannot.
"""

from __future__ import annotations

import logging
from typing import Protocol

import asyncssh

from sshchat.ssh.patches import (
    chacha_one_keystream,
    direct_write,
    env_bounds,
    gcm_one_context,
    ignore_only_for_cbc,
    lazy_mlkem,
    log_level_first,
    skip_login_reload,
)
from sshchat.ssh.patches.touch import Touch

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
BOUNDS: tuple[Patch, ...] = (env_bounds,)
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
    for patch in were_in:
        patch.uninstall()
    found: list[str] = []
    try:
        for patch in ALL:
            for touch in patch.TOUCHES:
                problem = touch.problem()
                if problem is not None and problem not in found:
                    found.append(problem)
    finally:
        for patch in were_in:
            patch.install()
    return found


def install(trims: bool = True, patches: tuple[Patch, ...] | None = None) -> bool:
    """Run the gate and, if it passes, install the patches: ``patches``
    (default: the bounds, and the trims if ``trims``). Patches installed
    before and not asked for now are taken out. Returns whether the gate
    passed; if not, everything is out and the log says why."""
    global _state
    uninstall()
    found = problems()
    if found:
        _state = "off: " + "; ".join(found)
        log.warning("asyncssh patches off: %s", "; ".join(found))
        return False
    chosen = patches if patches is not None else (ALL if trims else BOUNDS)
    for patch in chosen:
        patch.install()
    _state = "on: " + ", ".join(name(p) for p in chosen)
    if not trims and patches is None:
        _state += " (fast_path = false)"
    return True


def uninstall() -> None:
    """Every patch out: asyncssh as it is."""
    global _state
    for patch in ALL:
        patch.uninstall()
    _state = "not installed"


def installed() -> list[str]:
    """The names of the patches in place now."""
    return [name(p) for p in ALL if p.installed()]


def describe() -> str:
    """For the start-up log: which patches are on, or why none is."""
    return "asyncssh patches " + _state
