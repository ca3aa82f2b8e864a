"""The one path of every message, whoever sends it: a person's line, a bot's
``say``, and a plugin's post.

    rate limit -> cleaning -> length -> mute -> [plugins] -> commit -> publish (bus)

``[plugins]``: when a plugin with a message hook is enabled, ``screen`` is
set (chat/plugin_host.py) and a room's message goes through it: it comes
back through ``screened`` (a rewrite is cleaned and length-checked again).
Without one, ``screen`` is None and the path is what it always was: one
attribute read more, no task, nothing waited for.

The bus carries what the store committed to ``Hub.receive``, which delivers
it: at once in one process, on every node in a cluster.

Every sender meets the same steps and the same refusals. A refusal is one
line of text: a sender that passed ``then`` hears it there (a bot prints it
and exits 1), a person reads it as a notice. ``then`` also hears ``None``
once the message is delivered. Nothing reaches anyone before the store has
kept it (DESIGN.md, steps 3 to 6).

Words that others read in someone's name without being a message (a topic,
the reason for a kick or a ban, an away note, the message of the day) meet
the same cleaning, length and mute checks in ``on_behalf``: a muted person
is refused, with a notice that says so, rather than heard some other way.
"""

from __future__ import annotations

from collections.abc import Callable

from sshchat.chat.bus import Private, Receive, RoomLine
from sshchat.chat.member import Member, identity
from sshchat.chat.message import SPOKEN, Kind, Message
from sshchat.chat.moderation import Moderation, until_text
from sshchat.chat.names import name_key
from sshchat.chat.ratelimit import BucketsByKey, Offences, TokenBucket
from sshchat.chat.room import Room
from sshchat.chat.sanitize import clean
from sshchat.chat.settings import ChatSettings
from sshchat.chat.store import Draft, OutcomeUnknown, Store
from sshchat.chat.telemetry import ChatCounts

# Hears the outcome of one message: None once delivered, else the refusal.
Then = Callable[[str | None], None]
# Takes a room's message (checked, cleaned, not muted) before it is committed
# and later hands it (or its rewrite) to ``Pipeline.screened``, or drops it.
Screen = Callable[[Member, Room, Kind, str, "Then | None"], None]

NOT_SAVED = "your message could not be saved (storage error), so nobody got it; please try again"
MAYBE_SAVED = (
    "the database stopped answering as your message was saved: if it was kept, everyone sees it "
    "within seconds; if you do not see it, send it again"
)
NOTHING_TO_SAY = "nothing to say"
MUTED_REMINDER_EVERY = 60.0  # seconds between "you are muted" reminders to a person
# Cleaning looks at every character, so a line longer than this many times
# max_message_chars is refused before it is cleaned (it could not clean down
# to the limit short of being mostly escape codes): what a refused line costs
# is bounded by the limit, not by the longest line a connection may send.
RAW_SHARE = 4


class Pipeline:
    """Checks, commits and delivers messages; the only code that does."""

    def __init__(
        self,
        settings: ChatSettings,
        store: Store,
        moderation: Moderation,
        offences: Offences,
        clock: Callable[[], float],
        disconnect: Callable[[Member, str, str], None],
        publish: Receive,
        counts: ChatCounts | None = None,
    ) -> None:
        """``publish``: the bus's (for the in-process bus, ``Hub.receive`` itself);
        ``counts``: where the messages this node accepts are counted (--metrics)."""
        self._counts = (counts or ChatCounts()).messages
        self._settings = settings
        self._store = store
        self._moderation = moderation
        self._offences = offences
        self._clock = clock
        self._disconnect = disconnect  # (member, what the room hears, what they read)
        self._publish = publish
        self._buckets = BucketsByKey(settings.rate_burst, settings.rate_per_second, clock)
        self.screen: Screen | None = None  # plugins' message hooks (chat/plugin_host.py), if any

    # ----------------------------------------------------------- the path

    def send(self, member: Member, room: Room, kind: Kind, text: str, then: Then | None = None) -> None:
        """The whole path for ``text`` from ``member`` to ``room``: the rate
        limit, then ``say``. What people type and what bots post both come here."""
        if self.within_rate(member, then):
            self.say(member, room, kind, text, then)

    def say(self, member: Member, room: Room, kind: Kind, text: str, then: Then | None = None) -> None:
        """``text`` (as typed) cleaned, checked, kept and delivered to ``room``.

        For lines whose rate was already paid (a command such as /me).
        """
        cleaned = self.clean(member, text, then)
        if cleaned is None or self._muted(member, room.name, kind, cleaned, None, then):
            return
        if self.screen is None:
            self.publish(member, room, kind, cleaned, then)
        else:
            self.screen(member, room, kind, cleaned, then)

    def screened(self, member: Member, room: Room, kind: Kind, text: str, then: Then | None, rewritten: bool) -> None:
        """A message the plugins let through: ``rewritten``, it is cleaned and
        length-checked again (a plugin's words meet the rules people's do)."""
        if rewritten:
            cleaned = self.clean(member, text, then)
            if cleaned is None:
                return
            text = cleaned
        self.publish(member, room, kind, text, then)

    def speak(self, member: Member, room: Room, text: str, then: Then | None = None) -> None:
        """A plugin's bot says ``text`` in ``room``: cleaned, length-checked,
        committed and delivered as anyone's line. Its rate is the plugin
        host's to bound (a few posts per hook run, a person's rate for the
        plugin's own timers); plugins' message hooks do not see it (a plugin
        answering messages would otherwise answer itself)."""
        cleaned = self.clean(member, text, then)
        if cleaned is not None:
            self.publish(member, room, Kind.CHAT, cleaned, then)

    def private(self, member: Member, target: Member, text: str, then: Then | None = None) -> None:
        """A message only ``member`` and ``target`` see, wherever they are."""
        cleaned = self.clean(member, text, then)
        if cleaned is None or self._muted(member, "", Kind.PRIVATE, cleaned, target.name, then):
            return
        draft = Draft(
            "", Kind.PRIVATE, member.name, cleaned, self._clock(), target.name, member.fingerprint,
            sender_session=member.session,
        )

        def committed(result: list[Message] | Exception) -> None:
            if isinstance(result, Exception):
                _refuse(member, MAYBE_SAVED if isinstance(result, OutcomeUnknown) else NOT_SAVED, then)
                return
            self._counts[Kind.PRIVATE] += 1
            self._publish(Private(result[0], member.person, target.person))
            if target is not member and target.away:
                member.outlet.notice(f"{target.name} is away: {target.away}")
            if then is not None:
                then(None)

        self._store.append([draft], committed)

    # ---------------------------------------------------------- the steps

    def bucket(self, identity: str) -> TokenBucket:
        """The rate limit of one identity, shared by all its connections (a
        new connection per message gains nothing)."""
        return self._buckets.get(identity)

    def charge_elsewhere(self, sender: str | None, name: str) -> None:
        """A line ``sender`` (Member.person; keyless: by ``name``, as their
        bucket is kept) said on another node: it leaves their bucket here
        that much emptier, so sessions on two nodes share one rate limit
        (within the bus's lag), never more than a node's own."""
        if sender is not None and sender.startswith("fingerprint:"):  # a key's person is its identity
            self.charge(sender)
        else:
            self.charge(identity(None, name_key(name)))

    def charge(self, who: str) -> None:
        """A token of ``who``'s bucket (``Member.identity``) spent on another
        node (a line, or a command: ``Charged``): drained here, never into debt."""
        self._buckets.get(who).drain()

    def within_rate(self, member: Member, then: Then | None = None) -> bool:
        """Spend one of ``member``'s tokens on a line (a message or a command).

        Over the limit, a person is told once per burst and repeat floods
        earn their address a block; a bot hears the refusal every time.
        """
        if member.bucket.take():
            member.throttled = False
            return True
        s = self._settings
        reason = (
            f"slow down: {s.rate_burst} messages at once, then {s.rate_per_second:g} a second; "
            "what you send now reaches nobody"
        )
        if then is not None:
            then(reason)
        if member.throttled:
            return False
        member.throttled = True
        if self._offences.record(member.address):
            until = until_text(self._offences.blocked_until(member.address))
            self._disconnect(member, "flooding", f"disconnected for flooding; your address may reconnect{until}")
        elif then is None:
            member.outlet.notice(reason)
        return False

    def clean(self, member: Member, text: str, then: Then | None = None) -> str | None:
        """``text`` made safe to show and checked for length, or None.

        A refusal is told (too long); a line with nothing left after
        cleaning is dropped quietly for a person, refused for a bot.
        """
        text, refusal = self._cleaned(text, "message", "not sent")
        if refusal is not None:
            _refuse(member, refusal, then)
            return None
        if not text:
            if then is not None:
                then(NOTHING_TO_SAY)
            return None
        return text

    def on_behalf(self, member: Member, text: str, doing: str) -> str | None:
        """``text`` that others will read in ``member``'s name (a topic, a
        reason, an away note), cleaned and checked like a message; None if
        it is refused (too long, or ``member`` is muted), and they are told.

        An empty result ("" once cleaned) is no words at all, so a muted
        person may still kick or ban without a reason. ``doing`` completes
        the refusal: "you cannot {doing} while muted".
        """
        text, refusal = self._cleaned(text, "text", "not done")
        if refusal is not None:
            _refuse(member, refusal, None)
            return None
        if text and self.refused_while_muted(member, doing):
            return None
        return text

    def _cleaned(self, text: str, what: str, outcome: str) -> tuple[str, str | None]:
        """The one check of words others will read, messages or not: ``text``
        cleaned, and why it is refused if it is too long ("{what} too long
        (...); {outcome}"), else None."""
        limit = self._settings.max_message_chars
        if len(text) <= limit * RAW_SHARE:  # far over: refused as it came, not worth cleaning
            text = clean(text)
        if len(text) > limit:
            return text, f"{what} too long ({len(text)} characters, at most {limit}); {outcome}"
        return text, None

    def refused_while_muted(self, member: Member, doing: str) -> bool:
        """True if ``member`` is muted, and then tell them they cannot ``doing``
        (e.g. "change your name"): nothing of theirs reaches others while muted."""
        mute = self._moderation.mute_for(member.person, member.address)
        if mute is None:
            return False
        member.outlet.notice(f"you cannot {doing} while muted{until_text(mute.until)}")
        return True

    def _muted(
        self, member: Member, room: str, kind: Kind, text: str, recipient: str | None, then: Then | None
    ) -> bool:
        """If ``member`` is muted: they see their own line, nobody else does,
        and they are reminded why now and then (a bot: every time)."""
        mute = self._moderation.mute_for(member.person, member.address)
        if mute is None:
            return False
        now = self._clock()
        member.outlet.deliver(Message(0, room, kind, member.name, text, now, recipient))
        reason = f"you are muted{until_text(mute.until)}: nobody else sees your messages"
        if then is not None:
            then(reason)
        elif now - member.muted_reminded >= MUTED_REMINDER_EVERY:
            member.muted_reminded = now
            member.outlet.notice(reason)
        return True

    def publish(self, member: Member, room: Room, kind: Kind, text: str, then: Then | None = None) -> None:
        """Commit, then publish: nobody sees what the store has not kept.

        Also the path of what the chat itself says in a room about someone
        (joins, renames, a new topic), which skips the checks above: any
        words of theirs in it have passed ``on_behalf``. A message the store
        could not keep is refused as any other refusal is: through ``then``
        if given, else as a notice (never both: a bot would hear it twice).
        """
        keep = kind in SPOKEN
        if room.closing:  # kept now, it would outlive the room's drop in the store
            if keep:
                _refuse(member, f"{room.name} is being removed; your message was not sent", then)
            return  # (a join or leave notice there is no loss)
        draft = Draft(room.name, kind, member.name, text, self._clock(), None, member.fingerprint, keep, member.session)

        def committed(result: list[Message] | Exception) -> None:
            if isinstance(result, Exception):
                _refuse(member, MAYBE_SAVED if isinstance(result, OutcomeUnknown) else NOT_SAVED, then)
                return
            sender = member.person
            counts = self._counts
            for msg in result:
                counts[msg.kind] += 1
                self._publish(RoomLine(msg, keep, sender))
            if then is not None:
                then(None)

        self._store.append([draft], committed)

    def announce(self, room: Room, kind: Kind, text: str) -> None:
        """A line from nobody in particular (a storm's summary), in the room's
        order; a summary the store could not place is not worth an error."""
        if room.closing:
            return

        def committed(result: list[Message] | Exception) -> None:
            if not isinstance(result, Exception):
                for msg in result:
                    self._counts[msg.kind] += 1
                    self._publish(RoomLine(msg, False))

        self._store.append([Draft(room.name, kind, "", text, self._clock(), keep=False)], committed)


def _refuse(member: Member, reason: str, then: Then | None) -> None:
    """Tell the sender why: through ``then`` if they gave one, else as a notice."""
    if then is not None:
        then(reason)
    else:
        member.outlet.notice(reason)
