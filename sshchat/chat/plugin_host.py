"""The plugin host: runs the enabled plugins' hooks so that none of them can
hold up, break or paint on anyone's chat.

- Every hook runs as its own task and is waited for at most its time limit
  (``message_timeout`` for the message hook, ``task_timeout`` for the rest);
  past it, it is cancelled and *abandoned* (not awaited: a hook that
  swallows its cancellation cannot hold anything either), logged, and the
  event goes on as if the plugin had said nothing. Errors are caught and
  logged the same way. The log is rate-limited per plugin and hook: a
  plugin failing on every message writes a line a minute, not a line a
  message.
- Message hooks run after cleaning, length and mute, before the commit.
  One sender's messages wait in order behind the one being screened (a line
  typed after it never overtakes it); other senders and rooms never wait for
  it: each sender has their own queue. A message hook that timed out is
  skipped for ``BREAKER_SECONDS`` (logged once), so a plugin that hangs
  costs one message the time limit, not every message.
- Join, leave and command hooks run in the background: a login never waits
  for a plugin.
- What a plugin says (its bot's posts, its replies, a drop's notice) is
  cleaned as people's words are; bot posts take the Pipeline like anyone's.
  A hook abandoned at its time limit is cut off: its ``Chat`` and ``reply``
  do nothing afterwards. One that ignores its cancellation runs on as a
  task: while a plugin has ``ABANDONED_MOST`` of those, its hooks are not
  started (logged), so a plugin that never ends its hooks costs a bounded
  amount of memory, not a task per login, command or message forever.
- A bot's posts (``say`` and ``tell``) are bounded, so a plugin in a loop
  cannot flood a room: a command, join or leave hook's ``Chat`` posts at
  most ``RUN_LINES`` (the command's rate token paid for them), and the
  ``Chat`` a plugin keeps from ``start`` pays the bot's own token bucket,
  a person's rate (``rate_burst``, ``rate_per_second``). Past either, the
  post is refused and logged (rate-limited like every plugin failure).

``on_hook(plugin, hook, seconds, outcome)`` (outcome: ok, error, timeout)
hears every hook run; a no-op by default, for metrics.

A hook that computes without awaiting cannot be stopped in one process (the
event loop runs it to its next await): keep plugins' own work small.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from sshchat.chat.commands import BUILT_IN, Command, CommandTable, Core
from sshchat.chat.logged import event
from sshchat.chat.member import NOWHERE, Member
from sshchat.chat.message import Kind
from sshchat.chat.names import InvalidName, check_name, skeleton
from sshchat.chat.pipeline import Pipeline, Then
from sshchat.chat.plugins import (
    HOOKS,
    CommandCall,
    CommandSpec,
    Drop,
    Pass,
    Plugin,
    PluginError,
    Presence,
    Rewrite,
    Said,
    overrides,
)
from sshchat.chat.ratelimit import TokenBucket
from sshchat.chat.room import Room
from sshchat.chat.sanitize import clean
from sshchat.chat.settings import ChatSettings

log = logging.getLogger("sshchat.plugins")

BREAKER_SECONDS = 30.0  # a message hook that timed out is skipped this long
LOG_EVERY = 60.0  # seconds between log lines about one plugin's one hook failing
REPLY_MOST = 1024  # characters of one reply or notice from a plugin
WAITING_MOST = 100  # lines one sender may have waiting behind a message being screened
RUN_LINES = 5  # posts (say, tell) one command, join or leave hook run may make
ABANDONED_MOST = 100  # a plugin's hooks abandoned but still running; past it, its hooks are skipped

OnHook = Callable[[str, str, float, str], None]
# A plugin command's name: typed after "/", listed in /help, a metrics label ("/NAME").
_COMMAND_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def _nothing(plugin: str, hook: str, seconds: float, outcome: str) -> None:
    pass


_Message = tuple[Member, Room, Kind, str, "Then | None"]


class _Waiting:
    """One sender's lines waiting for the plugins, in the order typed: the
    message being screened, then messages and whole lines (commands too:
    a /roll typed after a line must not overtake it) typed since."""

    __slots__ = ("dropped", "fresh", "lines", "replaying", "told")

    def __init__(self) -> None:
        self.lines: deque[_Message | Callable[[], None]] = deque()
        self.fresh: list[_Message] = []  # what a line being replayed now said: it goes next
        self.replaying = False
        self.dropped = False  # the sender was sent away: nothing of theirs goes on
        self.told = False  # that a line past WAITING_MOST was not sent (once: a paste is many lines)


class _BotChat:
    """A plugin's ``Chat``: its bot speaks through the Pipeline. ``open``
    turns False when the hook it was lent to was abandoned. ``left``: the
    posts this hook run may still make (None: the plugin's own ``Chat``,
    from ``start``, which pays the bot's token bucket instead)."""

    def __init__(self, host: PluginHost, bot: Member, plugin: str, left: int | None = None) -> None:
        self._host = host
        self._bot = bot
        self._plugin = plugin
        self.open = True
        self.left = left

    def scoped(self) -> _BotChat:
        """The same bot, for one hook run (closed if the run is abandoned)."""
        return _BotChat(self._host, self._bot, self._plugin, RUN_LINES)

    def say(self, room: str, text: str) -> None:
        if self.open and self._spend("say"):
            self._host.bot_say(self._plugin, self._bot, room, text)

    def tell(self, name: str, text: str) -> None:
        if self.open and self._spend("tell"):
            self._host.bot_tell(self._plugin, self._bot, name, text)

    def _spend(self, what: str) -> bool:
        """One post's worth of this run's lines, or of the bot's bucket; a
        post past them is refused (logged): a looping plugin floods nobody."""
        if self.left is None:
            if self._bot.bucket.take():
                return True
            limit = f"over its rate ({self._bot.bucket.burst:g} at once, then {self._bot.bucket.rate:g} a second)"
        elif self.left > 0:
            self.left -= 1
            return True
        else:
            limit = f"more than {RUN_LINES} posts from one hook run"
        self._host._report(self._plugin, what, "refused", f"{limit}: not posted")
        return False


class PluginHost:
    """The enabled plugins, checked once at start and run safely ever after."""

    def __init__(
        self,
        plugins: Sequence[Plugin],
        message_timeout: float,
        task_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Checks every plugin (raises PluginError: a bot name, a hook not
        ``async def``, a command taking a built-in's name)."""
        self.plugins = list(plugins)
        self.message_timeout = message_timeout
        self.task_timeout = task_timeout
        self._clock = clock
        self.on_hook: OnHook = _nothing
        self._screeners = [p for p in self.plugins if overrides(p, "on_message")]
        self._joiners = [p for p in self.plugins if overrides(p, "on_join")]
        self._leavers = [p for p in self.plugins if overrides(p, "on_leave")]
        self.bot_names: dict[str, str] = {}  # plugin -> its bot's name
        extra: list[Command] = []
        for plugin in self.plugins:
            self.bot_names[plugin.name] = self._bot_name(plugin)
            for hook in HOOKS:
                if overrides(plugin, hook) and not inspect.iscoroutinefunction(getattr(plugin, hook)):
                    raise PluginError(f"plugin {plugin.name}: {hook} must be an async def")
            extra.extend(self._command(plugin, spec) for spec in plugin.commands())
        try:
            self.commands: CommandTable = BUILT_IN.extended(extra)
        except ValueError as e:
            raise PluginError(f"a plugin's command cannot be added: {e}") from None
        self._open_until: dict[str, float] = {}  # plugin -> when its message hook is tried again
        self._logged: dict[tuple[str, str, str], tuple[float, int]] = {}  # -> (last line, untold since)
        self._waiting: dict[int, _Waiting] = {}  # sender's session -> their lines waiting
        self._abandoned: dict[str, int] = {}  # plugin -> its hooks abandoned and not yet ended
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pipeline: Pipeline | None = None
        self._find: Callable[[str], Member | None] = lambda name: None
        self._room: Callable[[str], Room | None] = lambda name: None
        self._chats: dict[str, _BotChat] = {}

    @property
    def screens(self) -> bool:
        """Whether any plugin has a message hook (else messages skip the host)."""
        return bool(self._screeners)

    # --------------------------------------------------------------- set-up

    def _bot_name(self, plugin: Plugin) -> str:
        short = plugin.name.rpartition(":")[2].rpartition(".")[2].lower()  # module:Attr -> attr
        name = plugin.bot_name or f"{short}-bot"
        try:
            check_name(name)
        except InvalidName as e:
            raise PluginError(f"plugin {plugin.name}: bot name: {e} (set bot_name)") from None
        if not name.lower().endswith("-bot"):
            raise PluginError(f'plugin {plugin.name}: bot name "{name}" must end in -bot')
        if any(skeleton(name) == skeleton(other) for other in self.bot_names.values()):
            raise PluginError(f'plugin {plugin.name}: bot name "{name}" is another plugin\'s')
        return name

    def _command(self, plugin: Plugin, spec: CommandSpec) -> Command:
        if not isinstance(spec.name, str) or _COMMAND_NAME.fullmatch(spec.name.lower()) is None:
            raise PluginError(
                f"plugin {plugin.name}: command name {_said(str(spec.name))[:40]!r}: "
                "1-32 letters, digits, - or _, starting with a letter"
            )
        if not inspect.iscoroutinefunction(spec.handler):
            raise PluginError(f"plugin {plugin.name}: the handler of /{spec.name} must be an async def")

        def handler(core: Core, member: Member, args: list[str], rest: str) -> None:
            self.run_command(plugin, spec, core, member, args, rest)

        return Command(  # what /help shows of it is cleaned as anything a plugin says
            spec.name.lower(), _said(spec.params), _said(spec.summary), handler, spec.min_args, spec.op_only,
            group="plugins", example=_said(spec.example),
        )

    def attach(
        self,
        pipeline: Pipeline,
        find: Callable[[str], Member | None],
        room: Callable[[str], Room | None],
        bots: dict[str, str],
        settings: ChatSettings,
    ) -> None:
        """The hub's side: its pipeline, people and rooms; ``bots`` (skeleton
        -> bot name) is where the hub refuses logins under a bot's name;
        ``settings``: the rate a bot's own posts are held to, a person's."""
        self._pipeline = pipeline
        self._find = find
        self._room = room
        for plugin in self.plugins:
            name = self.bot_names[plugin.name]
            bots[skeleton(name)] = name
            bucket = TokenBucket(settings.rate_burst, settings.rate_per_second, self._clock)
            bot = Member(name, None, NOWHERE, bucket)
            self._chats[plugin.name] = _BotChat(self, bot, plugin.name)
        if self._screeners:
            pipeline.screen = self.screen

    def start(self) -> None:
        """Lend each plugin its bot (after the chat is up)."""
        for plugin in self.plugins:
            self._guard(plugin.name, "start", partial(plugin.start, self._chats[plugin.name]))

    def close(self) -> None:
        """Cancel every hook still running (the server stops)."""
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------ messages

    def screen(self, member: Member, room: Room, kind: Kind, text: str, then: Then | None) -> None:
        """The Pipeline's hand-over of a room's message (Pipeline.screen)."""
        waiting = self._waiting.get(member.session)
        if waiting is not None:  # their earlier line is with the plugins: this one goes after it
            (waiting.fresh if waiting.replaying else waiting.lines).append((member, room, kind, text, then))
            return
        if not self._active():
            assert self._pipeline is not None
            self._pipeline.screened(member, room, kind, text, then, False)
            return
        waiting = self._waiting[member.session] = _Waiting()
        waiting.lines.append((member, room, kind, text, then))
        self._spawn(self._drain(member.session, waiting))

    def _active(self) -> list[Plugin]:
        """The message hooks to run now: those not skipped since a timeout."""
        if not self._open_until:
            return self._screeners
        now = self._clock()
        for name, until in list(self._open_until.items()):
            if now >= until:
                del self._open_until[name]
                event(logging.INFO, "plugin_resumed", f"plugin {name}: message hook tried again", plugin=name)
        return [p for p in self._screeners if p.name not in self._open_until]

    def drop(self, member: Member) -> None:
        """``member`` was sent away (kicked, banned): the lines they have
        waiting go nowhere, the one with the plugins now included."""
        waiting = self._waiting.get(member.session)
        if waiting is not None:
            waiting.dropped = True
            waiting.lines.clear()
            waiting.fresh.clear()

    def defer(self, member: Member, line: str, handle: Callable[[Member, str], None]) -> bool:
        """If ``member`` has a message with the plugins, keep ``line`` (typed
        after it) to be handled in its turn and return True; else False."""
        waiting = self._waiting.get(member.session)
        if waiting is None or waiting.replaying:
            return False
        if len(waiting.lines) >= WAITING_MOST:
            if not waiting.told:  # once, not once per line of a long paste
                waiting.told = True
                member.outlet.notice(
                    f"your earlier lines are still being checked: lines past {WAITING_MOST} were not sent; "
                    "send them again"
                )
        else:
            waiting.lines.append(partial(handle, member, line))
        return True

    async def _drain(self, session: int, waiting: _Waiting) -> None:
        """One sender's lines through the plugins, one at a time, in order."""
        try:
            while waiting.lines:
                entry = waiting.lines.popleft()
                try:
                    if callable(entry):  # a whole line typed meanwhile: handled now, what it says goes next
                        waiting.replaying = True
                        try:
                            entry()
                        finally:
                            waiting.replaying = False
                        waiting.lines.extendleft(reversed(waiting.fresh))
                        waiting.fresh.clear()
                    else:
                        await self._screen_one(waiting, *entry)
                except Exception:  # a fault of ours must not lose the lines after it
                    log.exception("a line waiting for the plugins failed; the next ones go on")
        finally:
            if self._waiting.get(session) is waiting:
                del self._waiting[session]

    async def _screen_one(
        self, waiting: _Waiting, member: Member, room: Room, kind: Kind, text: str, then: Then | None
    ) -> None:
        original = text
        for plugin in self._active():
            if waiting.dropped:
                return
            said = Said(member.name, room.name, kind.value, text)
            ok, verdict = await self._run(plugin.name, "on_message", partial(plugin.on_message, said),
                                          self.message_timeout)
            if not ok or verdict is None or isinstance(verdict, Pass):
                continue
            if isinstance(verdict, Rewrite) and isinstance(verdict.text, str):
                text = verdict.text
            elif isinstance(verdict, Drop):
                notice = _said(str(verdict.notice)) or "your message was held back"
                if then is not None:
                    then(notice)
                else:
                    member.outlet.notice(notice)
                return
            else:
                self._report(plugin.name, "on_message", "error", f"answered {type(verdict).__name__}, not a verdict")
        if waiting.dropped:
            return
        assert self._pipeline is not None
        self._pipeline.screened(member, room, kind, text, then, text is not original)

    # ------------------------------------------------- joins, leaves, commands

    def joined(self, member: Member, room: str) -> None:
        """``member`` logged in here: the join hooks, in the background."""
        for plugin in self._joiners:
            self._background(plugin, "on_join", lambda p, chat: p.on_join(Presence(member.name, room, chat)))

    def left(self, member: Member, room: str) -> None:
        """``member`` left: the leave hooks, in the background."""
        for plugin in self._leavers:
            self._background(plugin, "on_leave", lambda p, chat: p.on_leave(Presence(member.name, room, chat)))

    def run_command(
        self, plugin: Plugin, spec: CommandSpec, core: Core, member: Member, args: list[str], rest: str
    ) -> None:
        """A plugin's command (its token paid, its arguments and rights checked
        by the table), in the background; its replies reach ``member``."""
        room = core.room_of(member).name
        is_op = core.is_op(member)
        scope: list[_BotChat] = []

        def reply(text: str) -> None:
            if scope and scope[0].open:
                member.outlet.notice(_said(text))

        def call(p: Plugin, chat: _BotChat) -> Coroutine[Any, Any, None]:
            scope.append(chat)
            return spec.handler(CommandCall(member.name, room, args, rest, is_op, reply, chat))  # type: ignore[return-value]

        self._background(plugin, f"/{spec.name}", call)

    def _background(
        self, plugin: Plugin, hook: str, make: Callable[[Plugin, _BotChat], Coroutine[Any, Any, Any]]
    ) -> None:
        chat = self._chats[plugin.name].scoped()

        async def run() -> None:
            ok, _ = await self._run(plugin.name, hook, lambda: make(plugin, chat), self.task_timeout)
            if not ok:
                chat.open = False  # abandoned: whatever it does later reaches nobody

        self._spawn(run())

    # ----------------------------------------------------------- the bots

    def bot_say(self, plugin: str, bot: Member, room_name: str, text: str) -> None:
        room = self._room(room_name)
        if room is None:
            self._report(plugin, "say", "error", f"no room called {_said(room_name)[:32]}")
            return
        assert self._pipeline is not None
        self._pipeline.speak(bot, room, text, self._refused(plugin, "say"))

    def bot_tell(self, plugin: str, bot: Member, name: str, text: str) -> None:
        target = self._find(name)
        if target is None:
            return  # gone meanwhile: nobody to tell
        assert self._pipeline is not None
        self._pipeline.private(bot, target, text, self._refused(plugin, "tell"))

    def _refused(self, plugin: str, what: str) -> Then:
        def then(refusal: str | None) -> None:
            if refusal is not None:
                self._report(plugin, what, "refused", refusal)

        return then

    # ---------------------------------------------------------- the running

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, plugin: str, hook: str, make: Callable[[], Coroutine[Any, Any, Any]], timeout: float
    ) -> tuple[bool, Any]:
        """Run one hook for at most ``timeout`` s: (True, its result), or
        (False, None) if it raised or was abandoned (logged, timed)."""
        start = time.perf_counter()
        abandoned = self._abandoned.get(plugin, 0)
        if abandoned >= ABANDONED_MOST:  # not started: what it would hold, it would never let go
            self._report(plugin, hook, "skipped", f"{abandoned} of its hooks past their time limit still run")
            return False, None
        try:
            task = asyncio.get_running_loop().create_task(make())
        except Exception as e:  # raised before its first await (or not a coroutine)
            self._ended(plugin, hook, start, "error", e)
            return False, None
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()  # and not awaited: a hook that ignores it holds up nothing
            self._abandoned[plugin] = self._abandoned.get(plugin, 0) + 1
            task.add_done_callback(partial(self._forget, plugin))
            self._ended(plugin, hook, start, "timeout", None)
            if hook == "on_message":
                self._open_until[plugin] = self._clock() + BREAKER_SECONDS
                event(
                    logging.WARNING, "plugin_skipped",
                    f"plugin {plugin}: message hook took over {timeout:g} s: skipped for {BREAKER_SECONDS:g} s",
                    plugin=plugin, hook=hook, seconds=BREAKER_SECONDS,
                )
            return False, None
        error = task.exception() if not task.cancelled() else asyncio.CancelledError()
        if error is not None:
            self._ended(plugin, hook, start, "error", error)
            return False, None
        self._ended(plugin, hook, start, "ok", None)
        return True, task.result()

    def _forget(self, plugin: str, task: asyncio.Task[Any]) -> None:
        """An abandoned hook's end: counted off, and its outcome collected so
        asyncio does not warn of it."""
        left = self._abandoned.get(plugin, 0) - 1
        if left > 0:
            self._abandoned[plugin] = left
        else:
            self._abandoned.pop(plugin, None)
        if not task.cancelled():
            task.exception()

    def _guard(self, plugin: str, hook: str, call: Callable[[], object]) -> None:
        """A plain call into a plugin (``start``), its error caught and logged."""
        start = time.perf_counter()
        try:
            call()
        except Exception as e:
            self._ended(plugin, hook, start, "error", e)
        else:
            self._ended(plugin, hook, start, "ok", None)

    def _ended(self, plugin: str, hook: str, start: float, outcome: str, error: BaseException | None) -> None:
        seconds = time.perf_counter() - start
        try:
            self.on_hook(plugin, hook, seconds, outcome)
        except Exception:
            log.exception("on_hook failed")
        if outcome == "error":
            self._report(plugin, hook, outcome, f"{type(error).__name__}: {error}")
        elif outcome == "timeout":
            self._report(plugin, hook, outcome, f"no answer within {seconds:.2f} s; abandoned")

    def _report(self, plugin: str, hook: str, outcome: str, detail: str) -> None:
        """Log a failure, at most once per LOG_EVERY per plugin, hook and kind."""
        key = (plugin, hook, outcome)
        now = self._clock()
        last, untold = self._logged.get(key, (float("-inf"), 0))
        if now - last < LOG_EVERY:
            self._logged[key] = (last, untold + 1)
            return
        self._logged[key] = (now, 0)
        more = f" ({untold} more like it since the last line)" if untold else ""
        event(
            logging.WARNING, "plugin_failed", f"plugin {plugin}: {hook} {outcome}: {detail[:300]}{more}",
            plugin=plugin, hook=hook, outcome=outcome, suppressed=untold or None,
        )


def _said(text: str) -> str:
    """What a plugin tells someone, cleaned as anyone's words, and bounded."""
    return clean(str(text)[: REPLY_MOST * 4])[:REPLY_MOST]


