"""A dict that counts the walks over it: cost tests count, they do not time."""

from __future__ import annotations

from typing import Any


class CountingDict(dict[Any, Any]):
    """A dict that counts the walks over it (iteration, keys, values, items)."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        CountingDict.walks += 1
        return super().__iter__()

    def keys(self):  # type: ignore[no-untyped-def]
        CountingDict.walks += 1
        return super().keys()

    def values(self):  # type: ignore[no-untyped-def]
        CountingDict.walks += 1
        return super().values()

    def items(self):  # type: ignore[no-untyped-def]
        CountingDict.walks += 1
        return super().items()
