"""The one rule for "this line names you": used by the rooms (to reach
people looking elsewhere) and by what a screen shows (highlight, bell)."""

from __future__ import annotations

from sshchat.chat.message import SPOKEN, Message
from sshchat.chat.names import name_key, words


def mentions(msg: Message, key: str) -> bool:
    """Does ``msg`` name the person whose name key is ``key``?

    Only what people say counts (not notices), and never their own lines;
    a name counts as a whole word, ignoring case (``words`` is computed once
    per message text, not per reader).
    """
    return msg.kind in SPOKEN and key in words(msg.text) and name_key(msg.sender) != key
