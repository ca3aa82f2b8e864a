"""What the server counts about itself, as plain numbers, for --metrics.

The chat core and the transport keep these counts in ints and fixed-size
lists; sshchat/metrics.py reads them when it is scraped. So the core needs
no metrics library (nor imports one), a count costs an int addition where
it happens, and nothing is paid per scrape-less second.

Login refusals are counted by their code (chat/refusals.py, a fixed set),
never by the words shown (which carry names and times): what a hostile
client sends must not be able to grow the number of series.
"""

from __future__ import annotations

from bisect import bisect_left

from sshchat.chat.message import Kind
from sshchat.chat.refusals import Refusal, reason_code


class ChatCounts:
    """What the chat core counts: messages accepted by kind, logins refused by reason.

    Every key exists from the start, so a reader in another thread (the
    metrics server's) never sees a dict change size.
    """

    __slots__ = ("messages", "refused")

    def __init__(self) -> None:
        self.messages: dict[str, int] = dict.fromkeys((k.value for k in Kind), 0)
        self.refused: dict[str, int] = dict.fromkeys((r.value for r in Refusal), 0)

    def refuse(self, refusal: object) -> None:
        """One login refused: count it under ``refusal``'s code."""
        self.refused[reason_code(refusal).value] += 1


class Buckets:
    """A histogram in plain numbers: fixed upper bounds, a count per bucket,
    the sum and the count; ``observe`` is a bisect and three additions.

    prometheus-client's Histogram takes a lock and walks its buckets per
    observation; this is read by a collector at scrape time instead. One
    writer at a time (the event loop, or the store's thread).
    """

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        """``times`` observations of ``value``."""
        self.counts[bisect_left(self.bounds, value)] += times
        self.sum += value * times
        self.count += times

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound as Prometheus writes it, observations at or below it), ending with +Inf."""
        out: list[tuple[str, int]] = []
        total = 0
        counts = list(self.counts)  # one copy: the writer may go on meanwhile
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out
