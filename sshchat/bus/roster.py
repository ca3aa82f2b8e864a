"""The cluster's roster on Redis: names claimed across nodes, and which
nodes are alive (the Roster protocol of sshchat/chat/roster.py).

* A name is a key ``sshchat:name:KEY`` whose value is "NODE\\nFINGERPRINT"
  of its holder, with a TTL (``TTL``). A claim is one Lua script, so it is
  atomic: free, or already this node's, it is taken; held on another node
  by the same key (not keyless), a login takes it over and the hub tells
  that node to end the old session; otherwise it is refused. A node's
  claims are renewed every ``EVERY`` seconds (and made again if Redis lost
  them), and released when their person leaves or is renamed; a node
  killed with SIGKILL renews nothing, so its names are free within ``TTL``.
* Each node keeps ``sshchat:node:NODE`` alive with the same TTL, and
  looks at the heartbeats of the nodes whose people it mirrors: one that
  expired is gone, and the hub drops its people. A node that finds its own
  heartbeat had expired (it was cut off, or Redis restarted empty) may
  have been dropped by the others, so it tells them its people again.

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

from sshchat.bus.url import where
from sshchat.chat.names import name_key
from sshchat.chat.roster import CLAIMED, Claim, ClaimThen, RosterListener

log = logging.getLogger("sshchat")
POOL_SIZE = 16  # connections to Redis for claims, releases and the heartbeat
POOL_WAIT = 5.0  # seconds a claim may wait for one of them in a burst of logins

NAME_PREFIX = "sshchat:name:"
NODE_PREFIX = "sshchat:node:"
TTL = 3.0  # seconds a claim or a heartbeat lasts unless renewed
EVERY = 1.0  # seconds between renewals (and looks at the other nodes)

# KEYS[1] the name; ARGV: node, fingerprint ("" keyless), ttl ms, take over ("1")
# -> {1, ""} claimed; {1, NODE} claimed from NODE (same key); {0, NODE} held by NODE
_CLAIM = """
local mine = ARGV[1] .. '\\n' .. ARGV[2]
local held = redis.call('GET', KEYS[1])
if not held or held == mine then
  redis.call('SET', KEYS[1], mine, 'PX', ARGV[3])
  return {1, ''}
end
local node, fp = string.match(held, '^(.-)\\n(.*)$')
if node == ARGV[1] then
  return {1, ''}
end
if ARGV[4] == '1' and ARGV[2] ~= '' and fp == ARGV[2] then
  redis.call('SET', KEYS[1], mine, 'PX', ARGV[3])
  return {1, node}
end
return {0, node or ''}
"""

# KEYS: names held here; ARGV[1] node, ARGV[2] ttl ms, ARGV[2+i] the value of KEYS[i].
# This node's (or nobody's) names are set to their holder here now; others' are
# left alone, and those another person (another key, or keyless) holds now are
# returned (by index): this node was cut off longer than a claim lasts.
_RENEW = """
local prefix = ARGV[1] .. '\\n'
local lost = {}
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if not held or string.sub(held, 1, #prefix) == prefix then
    redis.call('SET', key, ARGV[i + 2], 'PX', ARGV[2])
  else
    local mine = string.match(ARGV[i + 2], '\\n(.*)$')
    local theirs = string.match(held, '\\n(.*)$')
    if mine == '' or theirs ~= mine then
      table.insert(lost, i)
    end
  end
end
return lost
"""

# KEYS[1] the name; ARGV[1] the value it must still have
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

class RedisRoster:
    """Names and heartbeats of one node, on the cluster's Redis."""

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

    # ---------------------------------------------------------- the Roster

    def attach(self, listener: RosterListener) -> None:
        self._listener = listener

    def claim(self, name: str, fingerprint: str | None, take_over: bool, then: ClaimThen) -> None:
        self._spawn(self._claim(name, fingerprint, take_over, then))

    def release(self, name: str, fingerprint: str | None) -> None:
        self._spawn(self._release(name, fingerprint))

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
        self._renew_script = self._client.register_script(_RENEW)
        self._release_script = self._client.register_script(_RELEASE)
        try:
            await self._beat(first=True)
        except (RedisError, OSError) as e:
            log.warning("roster: Redis at %s did not answer (%s); retrying", where(self.url), e)
        self._loop_task = asyncio.create_task(self._every_beat())

    async def close(self) -> None:
        """Stop beating; let go of the heartbeat at once (the hub released the
        names of its people as it let them go; a release still under way is
        given a moment)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.wait([self._loop_task], timeout=1.0)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        client = self._client
        if client is None:
            return
        with contextlib.suppress(TimeoutError, RedisError, OSError):  # else its TTL ends it a moment later
            await asyncio.wait_for(client.delete(NODE_PREFIX + self.node), timeout=1.0)
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
        try:
            ok, holder = await self._claim_script(
                keys=[NAME_PREFIX + name_key(name)],
                args=[self.node, fingerprint or "", self._ttl_ms, "1" if take_over else "0"],
            )
        except (RedisError, OSError) as e:
            log.warning("roster: cannot claim %s: %s", name, e)
            answer = Claim(error="the cluster's Redis cannot be reached")
        else:
            holder = holder.decode() if isinstance(holder, bytes) else str(holder)
            answer = CLAIMED if ok and not holder else Claim(displaced=holder) if ok else Claim(taken=True)
        then(answer)

    async def _release(self, name: str, fingerprint: str | None) -> None:
        if self._client is None:
            return
        with contextlib.suppress(RedisError, OSError):  # else its TTL lets go of it a moment later
            await self._release_script(keys=[NAME_PREFIX + name_key(name)], args=[self._value(fingerprint)])

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
        """Keep this node and its names alive; find the nodes that are not."""
        assert self._client is not None and self._listener is not None, "attach() and start() first"
        listener = self._listener
        held = listener.held_names()
        others = [node for node in listener.mirrored_nodes() if node != self.node]
        # Closed on the way out even when Redis fails mid-way (else "Unclosed Pipeline client" in the log)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(NODE_PREFIX + self.node, "1", px=self._ttl_ms, get=True)
            if held:
                await self._renew_script(
                    keys=[NAME_PREFIX + name_key(name) for name, _ in held],
                    args=[self.node, self._ttl_ms, *(self._value(fingerprint) for _, fingerprint in held)],
                    client=pipe,
                )
            if others:
                pipe.mget([NODE_PREFIX + node for node in others])
            answers = await pipe.execute()
        if self._down:
            log.info("roster: Redis at %s answers again", where(self.url))
            self._down = False
        if answers[0] is None and not first:
            # Redis lost this node's heartbeat (it restarted empty, or this node
            # was cut off): the others may have dropped its people, so tell them
            # again; and theirs may be missing only until their next beat.
            listener.node_forgotten()
            return
        if held:
            for index in answers[1]:
                name, fingerprint = held[int(index) - 1]
                log.warning("roster: %s was claimed on another node while this one was cut off", name)
                listener.name_lost(name, fingerprint)
        if others:
            for node, beat in zip(others, answers[-1], strict=True):
                if beat is None:
                    log.info("roster: node %s stopped answering; its people are gone", node)
                    listener.node_gone(node)
