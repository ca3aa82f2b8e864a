"""The cluster's roster on Redis: names claimed across nodes, which nodes
are alive, and who is on each (the Roster protocol of sshchat/chat/roster.py).

* Each node keeps ``sshchat:node:NODE`` alive with a TTL (``TTL``),
  renewed every ``EVERY`` seconds: one key per node, whatever its number of
  people. It is the node's life: every claim of the node lives with it.
* A name is a key ``sshchat:name:KEY`` whose value is "NODE\\nFINGERPRINT"
  of its holder, with no TTL: it is valid while NODE's heartbeat lives, so
  a node killed with SIGKILL frees all its names at once when its
  heartbeat expires, and no name needs renewing (renewing every claim every
  second cost Redis ~6.5 ms a beat for 1000 names, growing with people).
  A claim is one Lua script, so it is atomic: free, held by a node whose
  heartbeat expired, or already this node's, it is taken; held on another
  live node by the same key (not keyless), a login takes it over and the
  hub tells that node to end the old session; otherwise it is refused.
  Claims are released when their person leaves or is renamed.
* ``sshchat:names:NODE`` (a set) lists the names a node claimed, so that
  what a dead node held can be cleaned up once (``_FORGET``), and a node
  back from a cut lets go of names it released while Redis was out of reach.
* ``sshchat:people:NODE`` (a hash) holds a node's people as it last
  published them (session -> the Arrived event) and its presence count
  ``v``; ``sshchat:nodes`` (a set) names the nodes. Each beat reads, for
  every other node, its heartbeat and count (O(nodes), not O(people)); a
  mirror behind a node's count for a whole beat missed an event, and is
  replaced by the hash (``RosterListener.reconcile``): no ghost stays.
* A node that finds its own heartbeat had expired (it was cut off, or Redis
  restarted empty) may have been dropped by the others: in one script it
  beats again, claims its people's names again (those another person took
  meanwhile are lost: ``name_lost``), lets go of the rest and writes its
  people again; then it tells the others its people again. That is O(people),
  only then (and after a write to Redis failed).

Every call here runs on the event loop and never blocks the chat: a claim
is answered through its callback once Redis has answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sshchat.bus.codec import CodecError, decode, encode
from sshchat.bus.url import where
from sshchat.chat.bus import Arrived, Departed
from sshchat.chat.names import name_key
from sshchat.chat.roster import CLAIMED, Claim, ClaimThen, RosterListener

log = logging.getLogger("sshchat")
POOL_SIZE = 16  # connections to Redis for claims, releases and the heartbeat
POOL_WAIT = 5.0  # seconds a claim may wait for one of them in a burst of logins

NAME_PREFIX = "sshchat:name:"
NODE_PREFIX = "sshchat:node:"
NAMES_PREFIX = "sshchat:names:"
PEOPLE_PREFIX = "sshchat:people:"
NODES = "sshchat:nodes"
TTL = 3.0  # seconds a heartbeat lasts unless renewed
EVERY = 1.0  # seconds between beats (and looks at the other nodes)
FRESH = 10.0  # seconds a claim is kept by _reclaim before its person joined (see RedisRoster._fresh)

# The scripts build the keys of other nodes from their names (a claim learns
# its holder by reading it): fine on one Redis, which is what a cluster of
# sshchat uses (not Redis Cluster).

# KEYS[1] the name, KEYS[2] this node's set of names; ARGV: node, fingerprint
# ("" keyless), take over ("1"), NODE_PREFIX, NAMES_PREFIX, the name's key
# -> {1, ""} claimed; {1, NODE} claimed from NODE (same key); {0, NODE} held by NODE
_CLAIM = """
local mine = ARGV[1] .. '\\n' .. ARGV[2]
local held = redis.call('GET', KEYS[1])
local node, fp
if held then
  node, fp = string.match(held, '^(.-)\\n(.*)$')
  if node ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. (node or '')) == 0 then
    -- its node's heartbeat expired: the claim died with it
    redis.call('SREM', ARGV[5] .. (node or ''), ARGV[6])
    held = false
  end
end
if not held or held == mine then
  redis.call('SET', KEYS[1], mine)
  redis.call('SADD', KEYS[2], ARGV[6])
  return {1, ''}
end
if node == ARGV[1] then
  return {1, ''}
end
if ARGV[3] == '1' and ARGV[2] ~= '' and fp == ARGV[2] then
  redis.call('SET', KEYS[1], mine)
  redis.call('SADD', KEYS[2], ARGV[6])
  redis.call('SREM', ARGV[5] .. node, ARGV[6])
  return {1, node}
end
return {0, node or ''}
"""

# KEYS[1] the name, KEYS[2] this node's set of names; ARGV: the value it must
# still have, the name's key
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SREM', KEYS[2], ARGV[2])
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] this node's heartbeat; ARGV: ttl ms, node, NODE_PREFIX,
# PEOPLE_PREFIX, NODES, then the nodes mirrored here. Renews the heartbeat
# only if it still lives (else the node must claim everything again, _RECLAIM)
# -> {1 alive or 0, then for each other node: node, 1 alive or 0, its count}
_BEAT = """
local out = {redis.call('PEXPIRE', KEYS[1], ARGV[1])}
local others = redis.call('SMEMBERS', ARGV[5])
for i = 6, #ARGV do table.insert(others, ARGV[i]) end
local seen = {}
for _, node in ipairs(others) do
  if node ~= ARGV[2] and not seen[node] then
    seen[node] = true
    table.insert(out, node)
    table.insert(out, redis.call('EXISTS', ARGV[3] .. node))
    table.insert(out, tonumber(redis.call('HGET', ARGV[4] .. node, 'v') or '0'))
  end
end
return out
"""

# KEYS[1] heartbeat, KEYS[2] names set, KEYS[3] people hash, KEYS[4..] the
# names held here. ARGV: node, ttl ms, NODE_PREFIX, NODES, NAME_PREFIX, count,
# n people, then n (session, record) pairs, then per name (value, key).
# -> the (1-based) indexes of the names another person holds now.
_RECLAIM = """
local node = ARGV[1]
local prefix = node .. '\\n'
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', ARGV[4], node)
local old = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
local npeople = tonumber(ARGV[7])
local base = 7 + 2 * npeople
local keep, lost = {}, {}
for i = 4, #KEYS do
  local j = base + 2 * (i - 4) + 1
  local value, key = ARGV[j], ARGV[j + 1]
  local held = redis.call('GET', KEYS[i])
  local ok = not held or string.sub(held, 1, #prefix) == prefix
  if not ok then
    local holder = string.match(held, '^(.-)\\n') or ''
    ok = redis.call('EXISTS', ARGV[3] .. holder) == 0
  end
  if ok then
    redis.call('SET', KEYS[i], value)
    redis.call('SADD', KEYS[2], key)
    keep[key] = true
  else
    local mine = string.match(value, '\\n(.*)$')
    local theirs = string.match(held, '\\n(.*)$')
    if mine == '' or theirs ~= mine then
      table.insert(lost, i - 3)
    end
  end
end
for _, key in ipairs(old) do
  if not keep[key] then
    local held = redis.call('GET', ARGV[5] .. key)
    if held and string.sub(held, 1, #prefix) == prefix then
      redis.call('DEL', ARGV[5] .. key)
    end
  end
end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], 'v', ARGV[6])
for i = 1, npeople do
  redis.call('HSET', KEYS[3], ARGV[6 + 2 * i], ARGV[7 + 2 * i])
end
return lost
"""

# ARGV: node, NODE_PREFIX, NAMES_PREFIX, NAME_PREFIX, PEOPLE_PREFIX, NODES.
# A node whose heartbeat expired: its names, people and place go (by whichever
# node notices first; the others find nothing left). -> 1 done, 0 it lives
_FORGET = """
local node = ARGV[1]
if redis.call('EXISTS', ARGV[2] .. node) == 1 then
  return 0
end
local prefix = node .. '\\n'
for _, key in ipairs(redis.call('SMEMBERS', ARGV[3] .. node)) do
  local held = redis.call('GET', ARGV[4] .. key)
  if held and string.sub(held, 1, #prefix) == prefix then
    redis.call('DEL', ARGV[4] .. key)
  end
end
redis.call('DEL', ARGV[3] .. node, ARGV[5] .. node)
redis.call('SREM', ARGV[6], node)
return 1
"""


class RedisRoster:
    """Names, heartbeat and people of one node, on the cluster's Redis."""

    cluster = True

    def __init__(self, url: str, node: str, *, ttl: float = TTL, every: float = EVERY) -> None:
        self.url = url
        self.node = node
        self._ttl_ms = int(ttl * 1000)
        self._every = every
        self._listener: RosterListener | None = None
        self._client: aioredis.Redis | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._down = False  # Redis did not answer the last beat (said once in the log)
        self._heart = NODE_PREFIX + node
        self._names = NAMES_PREFIX + node
        self._people = PEOPLE_PREFIX + node
        # What this node published about its people, in order, not yet in
        # Redis: one writer task sends it (in order: an arrival and its
        # departure must not cross), as one transaction per batch.
        self._pending: list[Arrived | Departed] = []
        self._writer: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # the writer and _reclaim take turns
        # A write to Redis failed (a record, a release): the next beat
        # rewrites this node's names and people whole (_reclaim).
        self._dirty = True
        self._suspect: dict[str, int] = {}  # node -> its count seen ahead of the mirror at the last beat
        self._reading: set[str] = set()  # nodes whose people are being read (reconcile)
        self._forgetting: set[str] = set()
        # Names claimed in the last FRESH seconds (key -> name, fingerprint,
        # when): a login between its claim and its join is not yet among the
        # hub's held names, and _reclaim must not let go of its claim.
        self._fresh: dict[str, tuple[str, str | None, float]] = {}

    # ---------------------------------------------------------- the Roster

    def attach(self, listener: RosterListener) -> None:
        self._listener = listener

    def claim(self, name: str, fingerprint: str | None, take_over: bool, then: ClaimThen) -> None:
        self._spawn(self._claim(name, fingerprint, take_over, then))

    def release(self, name: str, fingerprint: str | None) -> None:
        fresh = self._fresh.get(name_key(name))
        if fresh is not None and fresh[1] == fingerprint:
            del self._fresh[name_key(name)]
        self._spawn(self._release(name, fingerprint))

    def record(self, event: Arrived | Departed) -> None:
        if self._dirty:
            return  # the next beat that reaches Redis writes this node's people whole
        self._pending.append(event)
        if self._client is not None and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._write())

    # --------------------------------------------------------- start, stop

    async def start(self) -> None:
        """Beat once (the bus has checked that Redis answers), then every second."""
        # A blocking pool: each claim and release is a task of its own, and a
        # burst of logins past the pool's size must wait for a connection, not
        # fail with "Too many connections" (which refused those logins).
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=POOL_SIZE, timeout=POOL_WAIT,
            socket_timeout=2.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0),
        )
        self._client = aioredis.Redis.from_pool(pool)
        self._claim_script = self._client.register_script(_CLAIM)
        self._release_script = self._client.register_script(_RELEASE)
        self._beat_script = self._client.register_script(_BEAT)
        self._reclaim_script = self._client.register_script(_RECLAIM)
        self._forget_script = self._client.register_script(_FORGET)
        try:
            await self._beat(first=True)
        except (RedisError, OSError) as e:
            log.warning("roster: Redis at %s did not answer (%s); retrying", where(self.url), e)
        self._loop_task = asyncio.create_task(self._every_beat())

    async def close(self) -> None:
        """Stop beating; let go of the heartbeat, the names left and the
        people at once (the hub released the names of its people as it let
        them go; a release still under way is given a moment)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.wait([self._loop_task], timeout=1.0)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=1.0)
        client = self._client
        if client is None:
            return
        with contextlib.suppress(TimeoutError, RedisError, OSError):  # else its TTL ends it a moment later
            await asyncio.wait_for(client.delete(self._heart), timeout=1.0)
            await asyncio.wait_for(self._forget(self.node), timeout=1.0)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(client.aclose(), timeout=1.0)

    # -------------------------------------------------------------- inside

    def _value(self, fingerprint: str | None) -> str:
        return f"{self.node}\n{fingerprint or ''}"

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _claim(self, name: str, fingerprint: str | None, take_over: bool, then: ClaimThen) -> None:
        assert self._client is not None, "start() first"
        key = name_key(name)
        try:
            ok, holder = await self._claim_script(
                keys=[NAME_PREFIX + key, self._names],
                args=[self.node, fingerprint or "", "1" if take_over else "0", NODE_PREFIX, NAMES_PREFIX, key],
            )
        except (RedisError, OSError) as e:
            log.warning("roster: cannot claim %s: %s", name, e)
            answer = Claim(error="the cluster's Redis cannot be reached")
        else:
            holder = holder.decode() if isinstance(holder, bytes) else str(holder)
            if ok:
                self._note_fresh(key, name, fingerprint)
            answer = CLAIMED if ok and not holder else Claim(displaced=holder) if ok else Claim(taken=True)
        then(answer)

    def _note_fresh(self, key: str, name: str, fingerprint: str | None) -> None:
        """Note a claim just made; forget those older than FRESH (oldest
        first: the dict is in the order they were noted)."""
        fresh, now = self._fresh, asyncio.get_running_loop().time()
        fresh.pop(key, None)
        fresh[key] = (name, fingerprint, now)
        while fresh:
            oldest = next(iter(fresh))
            if now - fresh[oldest][2] <= FRESH:
                break
            del fresh[oldest]

    async def _release(self, name: str, fingerprint: str | None) -> None:
        if self._client is None:
            return
        key = name_key(name)
        try:
            await self._release_script(keys=[NAME_PREFIX + key, self._names], args=[self._value(fingerprint), key])
        except (RedisError, OSError):
            self._dirty = True  # the next beat that reaches Redis lets go of it (_reclaim)

    async def _write(self) -> None:
        """Send what was published about this node's people, in order."""
        assert self._client is not None
        while self._pending and not self._dirty:
            batch, self._pending = self._pending, []
            try:
                async with self._writing, self._client.pipeline(transaction=True) as pipe:
                    for event in batch:
                        if type(event) is Arrived:
                            pipe.hset(self._people, str(event.session), encode(event))
                        elif event.session is not None:
                            pipe.hdel(self._people, str(event.session))
                    pipe.hset(self._people, "v", batch[-1].seq)
                    await pipe.execute()
            except (RedisError, OSError):
                self._dirty = True  # the next beat that reaches Redis writes them whole

    async def _every_beat(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self._beat()
            except (RedisError, OSError) as e:
                if not self._down:
                    log.warning("roster: Redis at %s did not answer (%s)", where(self.url), e)
                self._down = True
            except Exception:  # a fault of ours must not stop the heartbeat
                log.exception("roster: heartbeat failed")

    async def _beat(self, first: bool = False) -> None:
        """Keep this node alive (one key); find the nodes that are not, and
        the mirrors that are behind. O(nodes), whatever the people online."""
        assert self._client is not None and self._listener is not None, "attach() and start() first"
        listener = self._listener
        mirrored = [node for node in listener.mirrored_nodes() if node != self.node]
        answer = await self._beat_script(
            keys=[self._heart], args=[self._ttl_ms, self.node, NODE_PREFIX, PEOPLE_PREFIX, NODES, *mirrored],
        )
        if self._down:
            log.info("roster: Redis at %s answers again", where(self.url))
            self._down = False
        if not answer[0] or self._dirty:
            await self._reclaim()
            if not answer[0] and not first:
                # Redis lost this node's heartbeat (it restarted empty, or this
                # node was cut off): the others may have dropped its people, so
                # tell them again; and theirs may be missing only until their next beat.
                listener.node_forgotten()
                return
        others = set(mirrored)
        for i in range(1, len(answer), 3):
            raw, alive, count = answer[i:i + 3]
            node = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not alive:
                self._suspect.pop(node, None)
                if node in others:
                    log.info("roster: node %s stopped answering; its people are gone", node)
                    listener.node_gone(node)
                if node not in self._forgetting:
                    self._forgetting.add(node)
                    self._spawn(self._forget(node))
                continue
            # A count ahead of the mirror for a whole beat (events in flight
            # take less): an event was missed, read the node's people.
            seen = listener.mirror_seq(node)
            noted = self._suspect.pop(node, None)
            if noted is not None and seen < noted:
                if node not in self._reading:
                    self._reading.add(node)
                    self._spawn(self._reconcile(node))
            elif int(count) > seen:
                self._suspect[node] = int(count)

    async def _reclaim(self) -> None:
        """Beat again after the heartbeat expired (or a write failed): this
        node's names claimed again, its people written again, in one script."""
        assert self._client is not None and self._listener is not None
        listener = self._listener
        async with self._writing:
            self._dirty = False
            self._pending.clear()  # the state now written supersedes it
            seq, people = listener.people()
            held = listener.held_names()
            keys = [name_key(name) for name, _ in held]
            now, known = asyncio.get_running_loop().time(), set(keys)
            for key, (name, fingerprint, when) in list(self._fresh.items()):
                if now - when > FRESH:
                    del self._fresh[key]
                elif key not in known:
                    held.append((name, fingerprint))
                    keys.append(key)
            args: list[Any] = [self.node, self._ttl_ms, NODE_PREFIX, NODES, NAME_PREFIX, seq, len(people)]
            for event in people:
                args += [str(event.session), encode(event)]
            for (_, fingerprint), key in zip(held, keys, strict=True):
                args += [self._value(fingerprint), key]
            try:
                lost = await self._reclaim_script(
                    keys=[self._heart, self._names, self._people, *(NAME_PREFIX + key for key in keys)], args=args,
                )
            except BaseException:
                self._dirty = True
                raise
        for index in lost:
            name, fingerprint = held[int(index) - 1]
            log.warning("roster: %s was claimed on another node while this one was cut off", name)
            listener.name_lost(name, fingerprint)

    async def _forget(self, node: str) -> None:
        """A node whose heartbeat expired: clean up its names and people."""
        try:
            with contextlib.suppress(RedisError, OSError):  # the next beat tries again
                await self._forget_script(
                    args=[node, NODE_PREFIX, NAMES_PREFIX, NAME_PREFIX, PEOPLE_PREFIX, NODES],
                )
        finally:
            self._forgetting.discard(node)

    async def _reconcile(self, node: str) -> None:
        """Read ``node``'s people from Redis; the mirror becomes them."""
        assert self._client is not None and self._listener is not None
        try:
            fields: dict[Any, Any] = await self._client.hgetall(PEOPLE_PREFIX + node)
        except (RedisError, OSError):
            return  # the next beats try again
        finally:
            self._reading.discard(node)
        if not fields:
            return  # gone meanwhile: its heartbeat says so
        seq = int(fields.pop(b"v", b"0"))
        people = []
        for data in fields.values():
            try:
                event = decode(data)
            except CodecError:
                continue  # another version's record
            if type(event) is Arrived:
                people.append(event)
        log.info("roster: the people of node %s were read again (an event was missed)", node)
        self._listener.reconcile(node, people, seq)
