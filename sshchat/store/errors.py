"""Why a store could not be opened, as the command line reports it."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used; ``str()`` says which and why."""


class StoreUnreachable(StoreError):
    """The database server did not answer within the start-up retry: a setting
    to fix (the address) or a service to start, so ``sshchat serve`` exits 2
    as for any other bad configuration of a cluster."""
