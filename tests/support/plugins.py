"""A plugin for tests to enable by ``module:attr`` (tests.support.plugins:Hello)."""

from __future__ import annotations

from sshchat.chat.plugins import CommandCall, CommandSpec, Plugin, Said, Verdict


class Hello(Plugin):
    """/hello: the bot greets the room."""

    def commands(self) -> list[CommandSpec]:
        return [CommandSpec("hello", "", "the bot says hello", self.hello)]

    async def hello(self, call: CommandCall) -> None:
        call.chat.say(call.room, f"hello {call.sender}")


class Grumpy(Plugin):
    """Its message hook fails on every line (the server logs it, counts it, and lets the line through)."""

    async def on_message(self, said: Said) -> Verdict:
        raise RuntimeError("grumpy")
