"""A plugin for tests to enable by ``module:attr`` (tests.support.plugins:Hello)."""

from __future__ import annotations

from sshchat.chat.plugins import CommandCall, CommandSpec, Plugin


class Hello(Plugin):
    """/hello: the bot greets the room."""

    def commands(self) -> list[CommandSpec]:
        return [CommandSpec("hello", "", "the bot says hello", self.hello)]

    async def hello(self, call: CommandCall) -> None:
        call.chat.say(call.room, f"hello {call.sender}")
