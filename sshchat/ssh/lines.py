"""Input without a terminal (scripts, ``ssh -T``, bots): whole lines only.

Without a PTY nobody edits or echoes: the client sends bytes as they come,
and a line counts once its newline arrives. What has not ended yet is kept,
but only up to a bound, so a sender cannot make us hold (and later scan)
a line of any length.
"""

from __future__ import annotations


class LineBuffer:
    """Splits input into lines (``\\n`` or ``\\r\\n`` ended)."""

    __slots__ = ("max_chars", "partial")

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.partial = ""  # the unfinished line so far

    def feed(self, data: str) -> tuple[list[str], bool]:
        """The lines ``data`` completes, and whether the unfinished one has
        grown past ``max_chars`` (it is then dropped)."""
        *lines, self.partial = (self.partial + data).split("\n")
        too_long = len(self.partial) > self.max_chars
        if too_long:
            self.partial = ""
        return [line.rstrip("\r") for line in lines], too_long

    def rest(self) -> str:
        """At end of input: the unfinished line (it counts too), and forget it."""
        rest, self.partial = self.partial, ""
        return rest
