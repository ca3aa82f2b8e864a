"""The reorder buffer (sshchat/bus/order.py): each room's messages reach a
node's people in id order, once each, whatever the bus did to them."""

from __future__ import annotations

from collections.abc import Callable

from sshchat.bus.order import FILL_LIMIT, ReorderBuffer
from sshchat.chat.bus import RoomLine
from sshchat.chat.message import Kind, Message
from tests.support.bus import Received, SequencedStore


class Timers:
    """call_later by hand: a test fires the gap timers when it says time has passed."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> Timers.Handle:
        handle = Timers.Handle(self, callback)
        self.pending.append(handle.fire)
        return handle

    def fire_next(self) -> None:
        self.pending.pop(0)()

    def fire_all(self, most: int = 100) -> None:
        """Fire timers (those they set too) until none is left; a buffer that
        keeps setting them is a fault, not a wait."""
        for _ in range(most):
            if not self.pending:
                return
            self.fire_next()
        raise AssertionError(f"timers still set after {most} fired")

    class Handle:
        def __init__(self, timers: Timers, callback: Callable[[], None]) -> None:
            self.timers, self.callback, self.cancelled = timers, callback, False

        def fire(self) -> None:
            if not self.cancelled:
                self.callback()

        def cancel(self) -> None:
            self.cancelled = True


def setup(last_ids: dict[str, int] | None = None) -> tuple[SequencedStore, Received, Timers, ReorderBuffer]:
    store, got, timers = SequencedStore(), Received(), Timers()
    return store, got, timers, ReorderBuffer(got, store, 0.2, last_ids, call_later=timers)


def test_in_order_each_line_is_delivered_at_once() -> None:
    store, got, timers, buffer = setup()
    for n in range(5):
        buffer.push(store.line("#a", f"m{n}"))
        assert got.texts("#a") == [f"m{i}" for i in range(n + 1)]
    assert timers.pending == [] and store.reads == []


def test_out_of_order_lines_wait_for_the_ones_before_them() -> None:
    store, got, timers, buffer = setup()
    lines = [store.line("#a", f"m{n}") for n in range(1, 6)]
    for i in (2, 4, 1, 0, 3):
        buffer.push(lines[i])
    assert got.ids("#a") == [1, 2, 3, 4, 5]
    timers.fire_all()
    assert store.reads == []  # nothing was missing long enough to ask the store


def test_rooms_wait_only_for_their_own_gaps() -> None:
    store, got, _, buffer = setup()
    a1, a2, b1 = store.line("#a", "a1"), store.line("#a", "a2"), store.line("#b", "b1")
    buffer.push(a2)
    buffer.push(b1)
    assert got.texts("#b") == ["b1"] and got.texts("#a") == []
    buffer.push(a1)
    assert got.texts("#a") == ["a1", "a2"]


def test_duplicates_are_dropped() -> None:
    store, got, _, buffer = setup()
    one, two, three = (store.line("#a", t) for t in ("one", "two", "three"))
    for event in (one, one, three, three, two, two, one, three):
        buffer.push(event)
    assert got.texts("#a") == ["one", "two", "three"]
    assert buffer.counts.duplicates == 5


def test_a_gap_not_filled_in_time_is_read_from_the_store() -> None:
    store, got, timers, buffer = setup()
    lines = [store.line("#a", f"m{n}") for n in range(1, 8)]
    buffer.push(lines[0])
    buffer.push(lines[4])  # 2, 3, 4 never come (their publisher died)
    buffer.push(lines[6])
    assert got.ids("#a") == [1]
    timers.fire_next()
    assert store.reads == [("#a", 1, 3)]
    assert got.ids("#a") == [1, 2, 3, 4, 5]  # 6 is still missing: wait for it in turn
    timers.fire_next()
    assert got.ids("#a") == [1, 2, 3, 4, 5, 6, 7]
    assert buffer.counts.filled == 4
    buffer.push(lines[1])  # the lost one arrives after all: already seen
    assert got.ids("#a") == [1, 2, 3, 4, 5, 6, 7]


def test_a_line_that_arrives_while_the_store_is_read_is_not_delivered_twice() -> None:
    store, got, timers, buffer = setup()
    lines = [store.line("#a", f"m{n}") for n in range(1, 4)]
    answers: list[Callable[[], None]] = []
    real_after = store.after

    def slow_after(room: str, after_id: int, limit: int, done: Callable[[list[Message]], None]) -> None:
        answers.append(lambda: real_after(room, after_id, limit, done))

    store.after = slow_after  # type: ignore[method-assign]
    buffer.push(lines[2])
    timers.fire_all()
    buffer.push(lines[0])  # the bus brings 1 while the store is being read
    buffer.push(lines[1])
    assert got.ids("#a") == [1, 2, 3]
    answers.pop()()
    assert got.ids("#a") == [1, 2, 3]


def test_a_restarted_empty_redis_loses_nothing() -> None:
    """Redis came back empty: what it held (4, 5) is gone from the bus; the
    next lines (6...) arrive, and the store gives the rest, in order."""
    store, got, timers, buffer = setup()
    lines = [store.line("#a", f"m{n}") for n in range(1, 9)]
    for event in lines[:3]:
        buffer.push(event)
    for event in lines[5:]:
        buffer.push(event)
    timers.fire_all()
    assert got.ids("#a") == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [e.sender for e in got.events[3:5]] == [None, None]  # read back: only the names are known


def test_a_long_gap_is_read_in_parts() -> None:
    store, got, timers, buffer = setup()
    lines = [store.line("#a", "x") for _ in range(FILL_LIMIT * 2 + 10)]
    buffer.push(lines[-1])
    timers.fire_all()
    assert got.ids("#a") == list(range(1, len(lines) + 1))
    assert len(store.reads) == 3


def test_what_the_store_no_longer_has_is_skipped() -> None:
    """A room dropped meanwhile, its lines deleted: the gap is not asked for again and again."""
    store, got, timers, buffer = setup()
    lines = [store.line("#a", f"m{n}") for n in range(1, 5)]
    del store.rooms["#a"][1:]  # 2, 3 and 4 deleted
    buffer.push(lines[0])
    buffer.push(lines[3])
    timers.fire_all()
    assert got.ids("#a") == [1, 4]
    assert timers.pending == [] and len(store.reads) == 1


def test_a_room_starts_after_what_the_node_loaded() -> None:
    store, got, _, buffer = setup({"#a": 3, "": 7})
    for n in range(4):
        event = store.line("#a", f"m{n}")
        if n >= 3:
            buffer.push(event)
    assert got.ids("#a") == [4]
    for n in range(8):
        event = store.private(f"p{n}")
        if n == 7:
            buffer.push(event)
    assert got.ids("") == [8]
    assert store.reads == []


def test_events_without_an_id_pass_straight_through() -> None:
    _, got, _, buffer = setup()
    notice = RoomLine(Message(0, "#a", Kind.JOIN, "bob", "bob joined", 0.0), False, None)
    buffer.push(notice)
    buffer.push(notice)
    assert got.events == [notice, notice]


def sweep(store: SequencedStore, buffer: ReorderBuffer, at_once: bool = False) -> None:
    store.last_ids(lambda last_ids: buffer.sweep(last_ids, at_once))


def test_a_message_the_bus_never_brought_is_read_from_the_store_at_the_next_sweep_but_one() -> None:
    """Its publisher died between the commit and the publish, and nothing
    was said in the room after it: the sweeps find it."""
    store, got, timers, buffer = setup()
    buffer.push(store.line("#a", "m1"))
    store.line("#a", "never published")
    store.commit("", "a private one never published", recipient="bob")
    sweep(store, buffer)  # it may be on its way through the bus: not yet
    assert got.texts("#a") == ["m1"] and store.reads == []
    sweep(store, buffer)  # still missing a sweep later: from the store
    timers.fire_all()
    assert got.texts("#a") == ["m1", "never published"]
    assert got.texts("") == ["a private one never published"]
    reads = len(store.reads)
    sweep(store, buffer)
    sweep(store, buffer)
    assert len(store.reads) == reads  # caught up: the store is not asked again


class ChangedOnly(SequencedStore):
    """Lists at each sweep only the rooms whose last id changed since the
    previous one, as the PostgreSQL store does."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, int] = {}

    def last_ids(self, done: Callable[[dict[str, int]], None]) -> None:
        def changed(every: dict[str, int]) -> None:
            news = {room: last for room, last in every.items() if self.seen.get(room) != last}
            self.seen.update(every)
            done(news)

        super().last_ids(changed)


def test_a_message_never_brought_is_found_when_the_sweep_lists_only_changed_rooms() -> None:
    """The second sweep no longer lists the room (it did not change): the
    node, still behind it, reads it all the same."""
    store, got, timers = ChangedOnly(), Received(), Timers()
    buffer = ReorderBuffer(got, store, 0.2, None, call_later=timers)
    buffer.push(store.line("#a", "m1"))
    store.line("#a", "never published")
    sweep(store, buffer)
    sweep(store, buffer)
    timers.fire_all()
    assert got.texts("#a") == ["m1", "never published"]
    reads = len(store.reads)
    sweep(store, buffer)
    assert len(store.reads) == reads  # caught up: the store is not asked again
    late = store.line("#a", "late")
    sweep(store, buffer)
    buffer.push(late)  # on its way when swept: from the bus, not the store
    sweep(store, buffer)
    assert got.texts("#a") == ["m1", "never published", "late"] and len(store.reads) == reads


def test_a_message_on_its_way_when_swept_is_not_read_from_the_store() -> None:
    store, got, _, buffer = setup()
    late = store.line("#a", "late")
    sweep(store, buffer)
    buffer.push(late)
    sweep(store, buffer)
    assert got.texts("#a") == ["late"] and store.reads == []


def test_a_sweep_at_once_reads_every_room_behind_now() -> None:
    store, got, timers, buffer = setup({"#a": 0})
    for n in range(FILL_LIMIT + 10):
        store.line("#a", f"m{n}")
    store.line("#b", "b1")
    sweep(store, buffer, at_once=True)
    timers.fire_all()
    assert got.ids("#a") == list(range(1, FILL_LIMIT + 11)) and got.texts("#b") == ["b1"]


def test_a_sweep_of_a_removed_rooms_counter_finds_nothing_and_asks_once() -> None:
    store, got, timers, buffer = setup({"#gone": 0})
    store.rooms["#gone"] = []  # removed, but its counter stays at 3 (ids never repeat)
    for _ in range(2):
        buffer.sweep({"#gone": 3})
    timers.fire_all()
    buffer.sweep({"#gone": 3})
    buffer.sweep({"#gone": 3})
    assert got.ids("#gone") == [] and len(store.reads) == 1
