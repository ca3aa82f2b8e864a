"""The cluster bus: every node's events through one capped Redis stream.

Publishing: ``publish`` hands the event to this node's own reorder buffer
(its people see it at once, Redis or not) and queues it; one task drains
the queue, sending whatever queued up meanwhile as one pipeline of XADDs
(MAXLEN ~ cap), so the caller never waits for Redis and the batches grow
with the load, as the store's do. While Redis is away the queue keeps what
it cannot send (up to ``OUTBOX_LIMIT``) and sends it once Redis is back.

Reading: one task per node, on its own connection, XREAD BLOCK from the
last entry id it saw; after a lost connection it reconnects (backoff from
``BACKOFF_MIN`` doubling to ``BACKOFF_MAX``) and resumes from that id, so
nothing is read twice or skipped while the stream still holds it. What the
stream no longer holds (trimmed by the cap, or a Redis that restarted
empty) the reorder buffer reads from the store (order.py). Entries this
node wrote are skipped: it delivered them when it published them.

Why one stream and not one per room: every node may have people in every
room, so every node reads every room anyway; one stream is one XREAD, one
last id and one connection, and a room made on another node needs no
announcement before its first line arrives. The order that matters, a
room's, comes from the store's ids, not from the stream.

A message committed whose event never reached the stream (its node died
between the commit and the XADD, or the outbox overflowed) is found by a
sweep: every ``SWEEP_EVERY`` seconds the node asks the store for the
rooms' last ids (one query, of the rooms changed since the previous ask)
and the reorder buffer reads what it lacks; at once, too, when the reader
gets Redis back.

What the node applied itself as it published it (``APPLIED_HERE``: state
changes, blocks, offences, names counted, tokens spent) is not handed to its
own buffer (chat/state.py applies other nodes' changes). Every event from
another node is shown to ``elsewhere`` as it is read (the hub charges its
sender's rate limit here, and counts its offences and names).

Bus lag (the publisher's wall clock in the entry, to the reader's clock on
arrival) is kept in ``lags`` for metrics and the bench. It is logged at stop
(the last ``LAG_SAMPLES`` entries) and on demand by ``report_lags`` (SIGUSR1
to the server: the entries read since the previous report), so that an
operator, or the bench, can see the lag of a chosen stretch of time rather
than of a whole run with its login burst.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sshchat.bus.codec import CodecError, decode, encode
from sshchat.bus.order import Backfill, ReorderBuffer
from sshchat.bus.url import check_url, where
from sshchat.chat.bus import APPLIED_HERE, BusError, Event, Receive
from sshchat.chat.telemetry import Buckets

log = logging.getLogger("sshchat")

STREAM = "sshchat:events"
BLOCK_MS = 1000  # one XREAD waits this long for entries, then asks again
BATCH = 500  # XADDs in one pipeline at most
READ_COUNT = 1000  # entries one XREAD returns at most
OUTBOX_LIMIT = 100_000  # events queued while Redis is away; past it the oldest go (the store has them)
BACKOFF_MIN = 0.05  # seconds before the first reconnection, doubling...
BACKOFF_MAX = 1.0  # ...up to this
CONNECT_TIMEOUT = 2.0
LAG_SAMPLES = 10_000
SWEEP_EVERY = 2.0  # seconds between two asks of the store for every room's last id


class RedisBus:
    """The Bus protocol over one Redis stream (see the module's docstring)."""

    def __init__(
        self,
        url: str,
        backfill: Backfill,
        *,
        stream_cap: int,
        gap_wait: float,
        start_wait: float,
        stream: str = STREAM,
        node: str | None = None,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        """``backfill``: the store, for gaps; ``stream_cap``: entries the stream
        keeps (about); ``gap_wait``: seconds a gap may last before the store is
        asked; ``start_wait``: seconds ``start`` tries to reach Redis."""
        self.url = check_url(url)
        self.stream = stream
        self.node = node or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._node_bytes = self.node.encode()
        self._backfill = backfill
        self._cap = stream_cap
        self._gap_wait = gap_wait
        self._start_wait = start_wait
        self._sweep_every = sweep_every
        self._buffer: ReorderBuffer | None = None
        self._elsewhere: Receive | None = None
        self._outbox: deque[tuple[float, Event]] = deque()
        self._wake = asyncio.Event()
        self._writer: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.last_id: bytes = b"0-0"  # the last entry read
        self.lags: deque[float] = deque(maxlen=LAG_SAMPLES)  # seconds, publish to receive, newest last
        self.lags_taken = 0  # entries whose lag was taken, ever (``lags`` keeps the newest)
        self.lag_buckets: Buckets | None = None  # with --metrics: every entry's lag, as a histogram
        self._reported = (0, 0)  # (reports made, lags_taken at the last report)
        self.published = 0  # entries written
        self.dropped = 0  # events that could not be kept while Redis was away
        self.connected = False  # the reader's connection, as last seen
        self._closing = False  # the loops end: a cancellation the client library turned into an error is not lost
        self._batch: list[tuple[float, bytes]] = []  # (publish time, encoded event): being sent, kept for a retry

    # ------------------------------------------------------------ the Bus

    crosses_processes = True  # other nodes hear what is published: state changes are worth sending

    def attach(self, receive: Receive, last_ids: Mapping[str, int], elsewhere: Receive | None = None) -> None:
        self._buffer = ReorderBuffer(receive, self._backfill, self._gap_wait, last_ids)
        self._elsewhere = elsewhere

    def publish(self, event: Event) -> None:
        assert self._buffer is not None, "attach() first"
        if len(self._outbox) >= OUTBOX_LIMIT:
            self._outbox.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("bus: Redis unreachable; %d events not sent (others read them from the store)",
                            self.dropped)
        self._outbox.append((time.time(), event))
        self._wake.set()
        if type(event) not in APPLIED_HERE:
            self._buffer.push(event)  # this node's people: at once, in order (after the queue: a fault here is local)

    async def start(self) -> None:
        """Reach Redis (retrying for ``start_wait`` seconds), then read and write."""
        self._writer = self._client(socket_timeout=5.0)
        self._reader = self._client(socket_timeout=BLOCK_MS / 1000 + 5.0)
        # The reply as Redis sent it: redis-py would make a tuple and a dict of every entry's fields, only
        # for _read to take three values out of them.
        self._reader.set_response_callback("XREAD", _as_sent)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_wait
        delay = BACKOFF_MIN
        while True:
            try:
                self.last_id = await self._end_of_stream()
                break
            except (RedisError, OSError) as e:
                if loop.time() + delay > deadline:
                    await self._disconnect()
                    raise BusError(f"cannot reach Redis at {where(self.url)}: {_reason(e)}") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        self.connected = True
        log.info("bus: Redis at %s, stream %s, node %s", where(self.url), self.stream, self.node)
        self._tasks = [
            asyncio.create_task(self._read()), asyncio.create_task(self._drain()), asyncio.create_task(self._sweeps())
        ]

    async def close(self, wait: float = 2.0) -> None:
        """Send what is queued (for up to ``wait`` seconds), then disconnect."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (self._outbox or self._batch) and loop.time() < deadline and self._tasks:
            await asyncio.sleep(0.01)
        self._closing = True
        self._log_lags()
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # not awaited without a bound: a client library stuck in a read must not hold up a stop
            await asyncio.wait(self._tasks, timeout=1.0)
        self._tasks = []
        if self._buffer is not None:
            self._buffer.close()
        await self._disconnect()

    def _log_lags(self) -> None:
        """One line at stop: the bus lag of the last entries read."""
        if not self.lags:
            return
        n = len(self.lags)
        log.info("bus lag over the last %d entries read: %s; %d published", n, _lag_figures(self.lags), self.published)

    def report_lags(self) -> None:
        """One line now: the bus lag of the entries read since the previous
        report (or since start; at most the newest ``LAG_SAMPLES``). The
        server calls it on SIGUSR1; the bench sends one as it starts
        measuring and one once everything sent was read, so its figure is
        the measured window's, without the login burst before it."""
        number, taken_then = self._reported
        number += 1
        since = self.lags_taken - taken_then
        self._reported = (number, self.lags_taken)
        kept = min(since, len(self.lags))
        if kept == 0:
            log.info("bus lag report %d: no entries read since the last", number)
            return
        recent = list(itertools.islice(self.lags, len(self.lags) - kept, None))
        log.info("bus lag report %d: over %d entries read since the last%s: %s", number, kept,
                 f" (the newest of {since})" if kept < since else "", _lag_figures(recent))

    # ------------------------------------------------------------- inside

    def _client(self, socket_timeout: float) -> aioredis.Redis:
        # Retries are ours (resume from the last id), not the client's. Each
        # client's calls come one at a time, so its pool holds one connection.
        return aioredis.Redis.from_url(
            self.url, socket_timeout=socket_timeout, socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )

    async def _disconnect(self) -> None:
        closing = [asyncio.ensure_future(c.aclose()) for c in (self._writer, self._reader) if c is not None]
        if closing:
            await asyncio.wait(closing, timeout=1.0)
        for task in closing:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: an error closing is moot
            else:
                task.cancel()

    async def _end_of_stream(self) -> bytes:
        """The id of the stream's newest entry ("0-0" for none): a node reads
        what comes after it starts; what came before, it has from the store."""
        assert self._reader is not None
        newest: Any = await self._reader.xrevrange(self.stream, count=1)
        return bytes(newest[0][0]) if newest else b"0-0"

    async def _read(self) -> None:
        """XREAD from the last id seen, for ever; reconnect and resume on errors."""
        assert self._reader is not None and self._buffer is not None
        reader, buffer, elsewhere = self._reader, self._buffer, self._elsewhere
        delay = BACKOFF_MIN
        catching_up = False  # back from a lost connection, the stream not yet read to its end
        while not self._closing:
            try:
                answer: Any = await reader.xread({self.stream: self.last_id}, count=READ_COUNT, block=BLOCK_MS)
            except (RedisError, OSError) as e:
                if self._closing:
                    return
                if self.connected:
                    log.warning("bus: lost Redis at %s (%s); reconnecting", where(self.url), _reason(e))
                self.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if not self.connected:
                log.info("bus: Redis at %s is back; reading on from %s", where(self.url), self.last_id.decode())
                self.connected = True
                catching_up = True
            delay = BACKOFF_MIN
            read = 0
            for _stream, entries in _streams(answer):
                now = time.time()
                read += len(entries)
                for entry_id, flat in entries:
                    self.last_id = entry_id
                    if not flat:
                        continue  # no fields: nothing this version wrote
                    if len(flat) == 6 and flat[0] == b"n" and flat[2] == b"t" and flat[4] == b"e":
                        node, sent, data = flat[1], flat[3], flat[5]  # the fields as _drain writes them
                    else:
                        fields = dict(zip(flat[::2], flat[1::2], strict=False))
                        node, sent, data = fields.get(b"n"), fields.get(b"t", b""), fields.get(b"e", b"")
                    if node == self._node_bytes:
                        continue  # ours: delivered when published
                    try:
                        event = decode(data)
                        lag = now - float(sent)
                        self.lags.append(lag)
                        self.lags_taken += 1
                        if self.lag_buckets is not None:
                            self.lag_buckets.observe(lag)
                    except (CodecError, KeyError, ValueError) as e:
                        log.error("bus: entry %s skipped: %s", entry_id.decode(), e)
                        continue
                    try:
                        if elsewhere is not None:
                            elsewhere(event)
                        buffer.push(event)
                    except Exception:  # a fault of ours in delivery must not stop the reader
                        log.exception("bus: delivering entry %s failed", entry_id.decode())
            if catching_up and read < READ_COUNT:
                # Back, and all the stream still held is read: the rest (a
                # Redis that restarted empty, entries trimmed) from the store.
                catching_up = False
                self.sweep(at_once=True)

    def sweep(self, at_once: bool = False) -> None:
        """Ask the store for the rooms' last ids; the buffer reads what it lacks."""
        buffer = self._buffer
        if buffer is None or self._closing:
            return

        def found(last_ids: dict[str, int]) -> None:
            if not self._closing:  # (the answer may come after close())
                buffer.sweep(last_ids, at_once)

        self._backfill.last_ids(found)

    async def _sweeps(self) -> None:
        """``sweep`` every ``sweep_every`` seconds, for ever."""
        while not self._closing:
            await asyncio.sleep(self._sweep_every)
            try:
                self.sweep()
            except Exception:  # a fault of ours must not end the sweeps
                log.exception("bus: sweep failed")

    async def _drain(self) -> None:
        """Send what queued up, as one pipeline; keep it and retry while Redis is away."""
        assert self._writer is not None
        writer = self._writer
        outbox, batch = self._outbox, self._batch
        delay = BACKOFF_MIN
        while not self._closing:
            if not batch and not outbox:
                self._wake.clear()
                await self._wake.wait()
            while outbox and len(batch) < BATCH:
                t, event = outbox.popleft()
                batch.append((t, encode(event)))
            try:
                pipe = writer.pipeline(transaction=False)
                for t, data in batch:
                    pipe.xadd(self.stream, {"n": self._node_bytes, "t": repr(t), "e": data},
                              maxlen=self._cap, approximate=True)
                await pipe.execute()
            except (RedisError, OSError) as e:
                if self._closing:
                    return
                if delay == BACKOFF_MIN:
                    log.warning("bus: cannot send to Redis at %s (%s); retrying", where(self.url), _reason(e))
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue  # the same batch again (a reader drops what arrives twice)
            self.published += len(batch)
            batch.clear()
            delay = BACKOFF_MIN


def _lag_figures(lags: Iterable[float]) -> str:
    """p50, p99 and max of lags (seconds, not empty), as the log lines say them, in ms."""
    ordered = sorted(lags)
    n = len(ordered)
    p50, p99 = (ordered[min(n - 1, max(0, -(-n * p // 100) - 1))] * 1000 for p in (50, 99))
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {ordered[-1] * 1000:.2f} ms"


def _as_sent(response: Any, **_options: Any) -> Any:
    """XREAD's reply unparsed (see ``start``)."""
    return response


def _streams(answer: Any) -> Any:
    """(stream, [(entry id, [field, value, ...]), ...]) pairs of an unparsed XREAD
    reply: a list of pairs in RESP2, a map in RESP3, None when BLOCK ran out."""
    if not answer:
        return ()
    return answer.items() if isinstance(answer, dict) else answer


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]
