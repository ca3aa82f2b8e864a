"""The slash commands.

    table.py       the one table (name, parameters, help, op-only, aliases,
                   handler), dispatch and /help; completion reads it too
    core.py        Core: everything a command may ask of the chat
    talk.py, rooms.py, people.py, view.py, moderation.py
                   the handlers, by area
"""

from sshchat.chat.commands.core import Core
from sshchat.chat.commands.rooms import ROOMS_SHOWN
from sshchat.chat.commands.table import BUILT_IN, COMMANDS, TABLE, Command, CommandTable, dispatch

__all__ = ["BUILT_IN", "COMMANDS", "ROOMS_SHOWN", "TABLE", "Command", "CommandTable", "Core", "dispatch"]
