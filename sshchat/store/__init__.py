"""Durable state behind the small interface of ``sshchat.chat.store``.

SQLite is the default, for a file or ":memory:"; memory.py is a twin for tests.
"""

from __future__ import annotations

from sshchat.store.sqlite import SQLiteStore, StoreError

__all__ = ["SQLiteStore", "StoreError"]
