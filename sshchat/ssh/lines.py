"""Input without a terminal (scripts, ``ssh -T``, bots): whole lines only.

Without a PTY nobody edits or echoes: the client sends bytes as they come,
and a line counts once its newline arrives. What has not ended yet is kept,
but only up to a bound, so a sender cannot make us hold (and later scan)
a line of any length.
"""

from __future__ import annotations


class LineBuffer:
    """Splits input into lines (``\\n`` or ``\\r\\n`` ended).

    The unfinished line is kept as the pieces it came in and joined once,
    when its newline comes: rejoining it on every piece would copy (and
    rescan) it again each time, work growing with the square of its length
    when it comes a character per packet.
    """

    __slots__ = ("_parts", "_size", "max_chars")

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._parts: list[str] = []  # the unfinished line so far, in pieces
        self._size = 0  # its length

    def feed(self, data: str) -> tuple[list[str], bool]:
        """The lines ``data`` completes, and whether the unfinished one has
        grown past ``max_chars`` (it is then dropped)."""
        lines: list[str] = []
        if "\n" in data:
            first, *lines, last = data.split("\n")
            if self._parts:
                self._parts.append(first)
                first = "".join(self._parts)
            lines.insert(0, first)
            self._parts, self._size = [last] if last else [], len(last)
        elif data:
            self._parts.append(data)
            self._size += len(data)
        too_long = self._size > self.max_chars
        if too_long:
            self._parts, self._size = [], 0
        return [line.rstrip("\r") for line in lines], too_long

    def rest(self) -> str:
        """At end of input: the unfinished line (it counts too), and forget it."""
        rest = "".join(self._parts)
        self._parts, self._size = [], 0
        return rest
