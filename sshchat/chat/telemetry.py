"""What the server counts about itself, as plain numbers, for --metrics.

The chat core and the transport keep these counts in ints and fixed-size
lists; sshchat/metrics.py reads them when it is scraped. So the core needs
no metrics library (nor imports one), a count costs an int addition where
it happens, and nothing is paid per scrape-less second.

Login refusals are counted by a reason *code* from the fixed set
``REASONS``, never by the words shown (which carry names and times): what
a hostile client sends must not be able to grow the number of series.
"""

from __future__ import annotations

from bisect import bisect_left

from sshchat.chat.message import Kind

# Why a login (a connection, a person, a bot) was turned away. The words a
# client reads say more; these codes are what is counted.
BLOCKED = "blocked"  # the address is blocked (too many refusals or floods)
BUSY = "busy"  # too many connections still logging in (max_startups)
FULL = "full"  # max_connections reached
PER_ADDRESS = "per_address"  # too many connections from one address
RATE = "rate"  # new connections from one address too fast
INVALID_NAME = "invalid_name"  # the name breaks the rule for names
BANNED = "banned"
ALLOWLIST = "allowlist"  # the server admits only listed keys
NAME_OWNED = "name_owned"  # the name is registered to another key (or the key holds its maximum)
LOOKALIKE = "lookalike"  # the name looks like someone else's
NAME_TAKEN = "name_taken"  # someone online has the name
SHUTTING_DOWN = "shutting_down"
UNAVAILABLE = "unavailable"  # the name could not be checked (a cluster's Redis away)
OTHER = "other"
REASONS = (
    BLOCKED, BUSY, FULL, PER_ADDRESS, RATE, INVALID_NAME, BANNED, ALLOWLIST, NAME_OWNED, LOOKALIKE, NAME_TAKEN,
    SHUTTING_DOWN, UNAVAILABLE, OTHER,
)


class Refusal(str):
    """The words a refused client reads, carrying the code it is counted by.

    A str, so every place that shows, compares or logs a refusal takes it
    as before; ``reason`` is read only where refusals are counted.
    """

    reason: str

    def __new__(cls, text: str, reason: str) -> Refusal:
        self = super().__new__(cls, text)
        self.reason = reason if reason in REASONS else OTHER
        return self


def reason_of(refusal: object) -> str:
    """The code of ``refusal`` (a Refusal, or an exception made from one); OTHER if it has none."""
    if isinstance(refusal, BaseException) and refusal.args:
        refusal = refusal.args[0]
    reason = getattr(refusal, "reason", OTHER)
    return reason if reason in REASONS else OTHER


class ChatCounts:
    """What the chat core counts: messages accepted by kind, logins refused by reason.

    Every key exists from the start, so a reader in another thread (the
    metrics server's) never sees a dict change size.
    """

    __slots__ = ("messages", "refused")

    def __init__(self) -> None:
        self.messages: dict[str, int] = dict.fromkeys((k.value for k in Kind), 0)
        self.refused: dict[str, int] = dict.fromkeys(REASONS, 0)

    def refuse(self, refusal: object) -> None:
        """One login refused: count it under ``refusal``'s code."""
        self.refused[reason_of(refusal)] += 1


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
