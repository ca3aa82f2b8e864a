"""The interface for bots and scripts: one command per SSH session.

    ssh -p 2222 bot@host say [#room] TEXT
    ssh -p 2222 bot@host tail [#room] [-n N] [--follow] [--json]
    ssh -p 2222 bot@host who [#room] [--json]

A bot goes through the same admission as a person (name rule, key binding,
bans, allowlist) and its messages take the same path as a person's (rate
limit, cleaning, length, mute: see pipeline.py), but it does not join the
chat: nobody sees it come and go. --json gives one object per line that a
program can read without parsing colours.

No SSH here: the transport runs a BotSession with the command line it got,
hands it input lines and end of input, and gives it three callables (write a
line, finish with a status, and the plain text of a message).
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sshchat.chat.hub import LOBBY, Hub, JoinRefused
from sshchat.chat.logged import event
from sshchat.chat.member import Member
from sshchat.chat.message import Kind, Message
from sshchat.chat.room import Room

USAGE = """\
usage: ssh [-p PORT] NAME@HOST COMMAND
commands:
  say [#ROOM] [TEXT]                      post TEXT (or each line of input) to a room
  tail [#ROOM] [-n N] [--follow] [--json] recent messages; --follow waits for new ones
  who [#ROOM] [--json]                    who is in a room
  (no command: the chat itself)
"""

# What a follower (tail --follow) is shown: the room's lines and its comings and goings.
_FOLLOWED = frozenset({Kind.CHAT, Kind.EMOTE, Kind.JOIN, Kind.LEAVE, Kind.SYSTEM})


class UsageError(Exception):
    """A command line we cannot run; the session prints USAGE and exits 2."""


@dataclass
class Command:
    """A parsed bot command line."""

    verb: str
    room: str = LOBBY
    text: str = ""
    count: int = 20
    follow: bool = False
    as_json: bool = False


def parse(line: str) -> Command:
    """Parse the exec command line, or raise UsageError saying what is wrong.

    OpenSSH sends the words after the host joined by spaces, without the
    quotes the local shell removed, so say's TEXT is taken as it comes:
    `ssh host say it's done` must not trip on the apostrophe.
    """
    verb, _, rest = line.strip().partition(" ")
    verb = verb.lower()
    if not verb:
        raise UsageError("no command given")
    if verb not in ("say", "tail", "who"):
        raise UsageError(f"unknown command {verb[:32]!r}")
    cmd = Command(verb)
    rest = rest.strip()
    if rest.startswith("#"):
        cmd.room, _, rest = rest.partition(" ")
        rest = rest.strip()
    if verb == "say":
        cmd.text = rest
        return cmd
    try:
        words = shlex.split(rest)
    except ValueError as e:
        raise UsageError(f"cannot read the command: {e}") from None
    while words:
        word = words.pop(0)
        if word == "--json":
            cmd.as_json = True
        elif word in ("--follow", "-f") and verb == "tail":
            cmd.follow = True
        elif word == "-n" and verb == "tail" and words and words[0].isdigit():
            cmd.count = max(0, min(int(words.pop(0)), 1000))
        else:
            raise UsageError(f"{verb}: unexpected {word[:32]!r}")
    return cmd


def message_json(msg: Message) -> str:
    """One message as one JSON line: id, room, time (ISO 8601), sender, kind, text."""
    when = datetime.fromtimestamp(msg.time, UTC).isoformat(timespec="milliseconds")
    return json.dumps(
        {"id": msg.id, "room": msg.room, "time": when.replace("+00:00", "Z"),
         "sender": msg.sender, "kind": msg.kind.value, "text": msg.text},
        ensure_ascii=False,
    )


class BotSession:
    """Runs one bot command for one SSH session.

    ``write`` sends a line to the bot, ``finish`` ends the session with an
    exit status (and an error line on stderr, if given); ``plain`` is the
    text of a message as scripts read it (term/ renders it: chat/ does not
    know how a message looks).
    """

    def __init__(
        self,
        hub: Hub,
        cmd: Command,
        write: Callable[[str], None],
        finish: Callable[[int, str | None], None],
        *,
        plain: Callable[[Message], str],
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.hub, self.cmd, self.write, self.finish = hub, cmd, write, finish
        self._plain = plain
        self._warn = warn  # a line for the bot's stderr that does not end the command
        self.visitor: Member | None = None
        self._following: Room | None = None
        self._pending_says = 0
        self._eof = False
        self._ended = False  # finished, or the connection is gone: post nothing, never start following

    # The Outlet a visitor needs (notices go to stderr via finish on errors).
    def deliver(self, msg: Message, elsewhere: bool = False) -> None:
        if self.cmd.follow and msg.kind in _FOLLOWED:
            self.write(self._line(msg))

    def _line(self, msg: Message) -> str:
        return message_json(msg) if self.cmd.as_json else self._plain(msg)

    def notice(self, text: str) -> None:
        """What the chat tells the bot itself (its name was not registered,
        say): on stderr, so scripts reading stdout are not confused."""
        if self._warn is not None and not self._ended:
            self._warn(text)

    def prompt_changed(self) -> None:
        pass

    def close(self, reason: str) -> None:
        self.finish(0, reason)

    def start(self, name: str, fingerprint: str | None, address: str) -> None:
        try:
            self.visitor = self.hub.visitor(name, fingerprint, self, address)
        except JoinRefused as e:
            event(
                logging.INFO, "login_refused", f"refused bot {name} from {address}: {e}",
                name=name, fingerprint=fingerprint, address=address, kind="bot", code=e.code, reason=str(e),
            )
            self.finish(1, str(e))
            return
        room = self.hub.room(self.cmd.room)
        event(  # the room as typed is not logged: it may be anything
            logging.INFO, "login", f"bot {name} from {address} ({fingerprint or 'no key'}): {self.cmd.verb}",
            name=name, fingerprint=fingerprint, address=address, kind="bot", room=room.name if room else None,
            command=self.cmd.verb,
        )
        if room is None:
            self.finish(1, f"no room called {self.cmd.room[:32]}")
            return
        if self.cmd.verb == "tail":
            self._tail(room)
        elif self.cmd.verb == "who":
            self._who(room)
        else:
            self._say()

    def _say(self) -> None:
        if self.cmd.text:
            self._post(self.cmd.text, last=True)
        # else: each line of input is posted (see line())

    def line(self, text: str) -> None:
        """A line of input (say without TEXT); none once the session ended
        (a refusal ends it: the lines after the refused one are not posted)."""
        if self._ended:
            return
        if self.cmd.verb == "say" and not self.cmd.text and text.strip():
            self._post(text, last=False)

    def eof(self) -> None:
        """End of input. Only `say` without TEXT reads input; a follower keeps
        following (bots often run with stdin at /dev/null) until it hangs up."""
        self._eof = True
        if self.cmd.verb == "say" and not self.cmd.text and self._pending_says == 0:
            self.finish(0, None)

    def _post(self, text: str, last: bool) -> None:
        assert self.visitor is not None
        self._pending_says += 1

        def done(error: str | None) -> None:
            self._pending_says -= 1
            if error is not None:
                self.finish(1, error)
            elif last or (self._eof and self._pending_says == 0):
                self.finish(0, None)

        self.hub.post(self.visitor, self.cmd.room, text, done)

    def _tail(self, room: Room) -> None:
        def show(messages: list[Message]) -> None:
            for msg in messages:
                self.write(self._line(msg))
            if self._ended:
                return
            if self.cmd.follow:
                assert self.visitor is not None
                self.hub.follow(room, self.visitor)
                self._following = room
            else:
                self.finish(0, None)

        self.hub.history(room, self.cmd.count, show)

    def _who(self, room: Room) -> None:
        now = self.hub.clock()
        for m in sorted(self.hub.people_in(room), key=lambda m: m.key):  # every node's
            if self.cmd.as_json:
                self.write(json.dumps({
                    "name": m.name, "fingerprint": m.fingerprint, "away": m.away,
                    "idle_seconds": round(now - m.last_active), "room": room.name,
                }))
            else:
                self.write(m.name + (" (away)" if m.away else ""))
        self.finish(0, None)

    def _stop_following(self) -> None:
        if self._following is not None and self.visitor is not None:
            self.hub.unfollow(self._following, self.visitor)
        self._following = None

    def ended(self) -> None:
        """The connection went away (or the session finished): stop listening."""
        self._ended = True
        self._stop_following()
