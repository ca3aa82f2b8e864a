"""The bus: how a committed message (or a saved change) reaches the sessions
that should see it, on this process and, in a cluster, on every other.

The chat core publishes an event once the store has kept what it describes,
and does the delivery only in ``receive``: the same code runs whether the
event was published here a moment ago or came from another node. So a
single process and a cluster differ only in the bus between the two calls:

* in-process (``sshchat/bus/local.py``, the default), ``publish`` calls
  ``receive`` at once: today's path, at today's cost;
* Redis (``sshchat/bus/redis.py``), every node receives every event, each
  room's messages in id order (the store's order), whichever node sent them.

Events are small records of what the core already has, never changed once
made (not ``frozen``: a frozen dataclass costs three times as much to build,
one ``object.__setattr__`` per field, and one is built for every message on
the path that DESIGN.md keeps cheap); their serialisation belongs to the
adapter that needs it, not here. A new kind of
event (presence, kicks) is a new dataclass added to ``Event``: a bus that
cannot carry it fails the test that round-trips every member of the union.
This module imports nothing but the core's own records (no redis here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from sshchat.chat.message import Message
from sshchat.chat.store import Change


@dataclass(slots=True)
class RoomLine:
    """A room message or notice, committed (``msg.id`` > 0) or a notice
    that is never kept (``keep`` False, id 0: delivered as it comes).

    ``sender``: who said it (``Member.person``), for /ignore; None for lines
    from nobody in particular.
    """

    msg: Message
    keep: bool = True
    sender: str | None = None


@dataclass(slots=True)
class Private:
    """A committed /msg, for its recipient and its sender's own session.

    ``sender`` and ``recipient`` are the people (``Member.person``) the
    sending node meant: a name can change hands between the send and the
    commit, and a private message must never reach whoever holds the name
    next. None: not known (a message read back from the store), and then the
    names in ``msg`` decide.
    """

    msg: Message
    sender: str | None = None
    recipient: str | None = None


@dataclass(slots=True)
class StateChanged:
    """A saved ban, mute, operator, topic, name binding... (a store Change),
    published once the store says it is durable (chat/state.py).

    The node that made the change has applied it already, so a bus never
    hands it back to that node; every other node applies it when it arrives.
    """

    change: Change


@dataclass(slots=True)
class Blocked:
    """An address (its key as every per-address rule counts it: the address
    or IPv6 /64, or the /48 around it) blocked until ``until`` for repeated
    offences (chat/ratelimit.py's Offences). Like a state change, it holds on
    every node, and a bus never hands it back to the node that made it."""

    key: str
    until: float


@dataclass(slots=True)
class Offended:
    """One offence of ``address`` (a refused login, a flood) on another node.

    Every node counts every node's offences (chat/ratelimit.py's Offences),
    so ``offence_threshold`` offences earn the block wherever they were
    made: a flooder who spreads them over two nodes needs no more. Offences
    are rare (each one is a refusal), so one small event each costs nothing
    worth a summary."""

    address: str


@dataclass(slots=True)
class Charged:
    """A command ``who`` (their rate limit's key: ``Member.identity``) gave
    on another node: it costs them a token here too, as a line does (lines
    charge through their own ``RoomLine``). Carries no text: the command
    itself concerns only the node it was given on."""

    who: str


@dataclass(slots=True)
class Registered:
    """A name was registered to a key from ``address`` on another node: it
    counts against the address's ``names_per_address_per_hour`` here too
    (the ``Binding`` itself, a state change, says nothing of where from)."""

    address: str


@dataclass(slots=True)
class Arrived:
    """A person is online on ``node``, in this state: sent when they come,
    and again whenever their name, rooms or away note changed (a rename is
    an Arrived of the same session under the new name), and to a node that
    says Hello. Other nodes keep a mirror of it (chat/roster.py).

    ``session``: their session number on ``node`` (with ``node``, who they
    are in the cluster); ``rooms``: room keys, ``room`` the one they look at.
    ``last_active``: when they last typed, as of the last Arrived (their node
    sends one when it moved on by IDLE_STEP or more, so /whois elsewhere shows
    an idle time that is at most that much short). ``seq``: this node's
    presence counter after this change (see Departed).
    """

    node: str
    session: int
    name: str
    fingerprint: str | None
    address: str
    room: str
    rooms: list[str]
    away: str | None
    connected_at: float
    last_active: float
    seq: int = 0


@dataclass(slots=True)
class Departed:
    """A person left ``node`` (``session``), or None: every one of its
    people at once (the node stops).

    ``seq``: each node counts its presence changes (Arrived, Departed) and
    keeps the count with its people in Redis; a node whose mirror is behind
    that count for more than a beat missed an event (the stream was trimmed
    while it was away, Redis restarted empty) and reads the node's people
    from Redis instead (sshchat/bus/roster.py), so no ghost stays.
    """

    node: str
    session: int | None = None
    seq: int = 0


@dataclass(slots=True)
class Kick:
    """End the session of ``person`` online as ``key`` on ``node``: a /kick
    from another node (the rooms hear ``reason``), or with ``reason`` None
    a login of the same key elsewhere that replaces it (quietly); the
    person reads ``goodbye``."""

    node: str
    key: str
    person: str
    reason: str | None
    goodbye: str


@dataclass(slots=True)
class Hello:
    """A node (re)started: the others tell it who they have (Arrived each)."""

    node: str


class BusError(Exception):
    """The bus cannot be used (at start); ``str()`` says why in one line."""


# Every kind of event a bus carries: one dataclass each, added here.
Event: TypeAlias = (
    RoomLine | Private | StateChanged | Blocked | Offended | Charged | Registered | Arrived | Departed | Kick | Hello
)

Receive = Callable[[Event], None]

# What the node that publishes it has applied already (a change it saved, a
# block, an offence or a name it counted, a token it spent): a bus never hands
# these back to that node, only to the others.
APPLIED_HERE: frozenset[type] = frozenset({StateChanged, Blocked, Offended, Charged, Registered})


class Bus(Protocol):
    """Fan-out of events to the chat core of every node (this one included)."""

    # Are there other processes to tell? False (the in-process bus): state
    # changes are not published at all, so one process pays nothing for them.
    crosses_processes: bool

    def publish(self, event: Event) -> None:
        """Hand ``event`` over for delivery everywhere; never blocks, never raises
        for a bus that is down (a remote bus queues and retries)."""

    def attach(self, receive: Receive, last_ids: Mapping[str, int], elsewhere: Receive | None = None) -> None:
        """``receive`` hears every event, on the event loop (one receiver: the hub).

        ``last_ids``: per room, the last message id the receiver has already
        (``Snapshot.last_ids``); only later ones are delivered, in id order.
        ``elsewhere`` hears each event another node published as soon as it
        arrives, before its room's order (what a line said on another node
        costs its sender here: rate limits across nodes); never called by
        the in-process bus.
        """

    async def start(self) -> None:
        """Connect; raise with a one-line reason if the bus cannot be reached."""

    async def close(self) -> None:
        """Hand over what was published, then let go of the connections."""
