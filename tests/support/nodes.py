"""Two (or more) cluster nodes in one process, for tests of the chat core
across nodes: hubs on one shared store (as a cluster's database is), a bus
that carries every event to every node as Redis does (through the codec,
``elsewhere`` first, and never handing a node back what it applied itself),
and a roster that lets every name be claimed, so that each node mirrors the
others' people (/msg, /mute and /whois reach them) without name rules
getting in the way. The real two-node runs are in test_cluster_e2e.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sshchat.bus.codec import decode, encode
from sshchat.chat.bus import APPLIED_HERE, Arrived, Departed, Event, Receive
from sshchat.chat.hub import Hub
from sshchat.chat.roster import CLAIMED, ClaimThen, RosterListener
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock
from tests.support.settings import chat_settings


class Wire:
    """The bus between the nodes: each event reaches every node, at once."""

    def __init__(self) -> None:
        self.ports: list[Port] = []
        self.sent: list[Event] = []

    def port(self) -> Port:
        port = Port(self)
        self.ports.append(port)
        return port


class Port:
    """One node's side of the wire (the Bus protocol)."""

    crosses_processes = True

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.receive: Receive | None = None
        self.elsewhere: Receive | None = None

    def attach(self, receive: Receive, last_ids: Mapping[str, int], elsewhere: Receive | None = None) -> None:
        self.receive, self.elsewhere = receive, elsewhere

    def publish(self, event: Event) -> None:
        self.wire.sent.append(event)
        for port in list(self.wire.ports):
            assert port.receive is not None
            if port is self:
                if type(event) not in APPLIED_HERE:
                    port.receive(event)
                continue
            carried = decode(encode(event))
            if port.elsewhere is not None:
                port.elsewhere(carried)
            port.receive(carried)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class OpenRoster:
    """A cluster's roster that grants every claim (names are not under test)."""

    cluster = True

    def __init__(self, node: str) -> None:
        self.node = node

    def claim(self, name: str, fingerprint: str | None, take_over: bool, then: ClaimThen) -> None:
        then(CLAIMED)

    def release(self, name: str, fingerprint: str | None) -> None:
        pass

    def attach(self, listener: RosterListener) -> None:
        pass

    def record(self, event: Arrived | Departed) -> None:
        """Nothing to keep: the wire loses no event."""


def nodes(
    count: int = 2, clock: Clock | None = None, admins: Iterable[str] = (), wire: Wire | None = None,
    **settings: object,
) -> list[Hub]:
    """``count`` hubs on one store and one ``wire`` (a test that reads what
    was sent passes its own), sharing ``clock``."""
    store, wire, clock = MemoryStore(), wire or Wire(), clock or Clock()
    return [
        Hub(store, chat_settings(**settings), clock=clock, admins=admins, bus=wire.port(), roster=OpenRoster(name))
        for name in "abcdefgh"[:count]
    ]
