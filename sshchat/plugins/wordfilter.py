"""``wordfilter``: words from a file, replaced by asterisks or the message
held back, configured in the TOML file::

    plugins = ["wordfilter"]
    [plugin.wordfilter]
    words = "/etc/sshchat/words.txt"   # one word a line; "#" starts a comment
    action = "replace"                 # or "hold": the sender is told, nobody else sees it

Matching costs O(length of the line), whatever the number of words: the
line is cut into words once (one regex pass) and each is looked up in a set
(case folded). A filtered word is matched whole, not inside another word
("class" does not match "ass"), and only single words, not phrases.

The file is read once, at start: a missing, unreadable or empty file, an
unknown action or setting stops the server with one line (exit status 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sshchat.chat.plugins import PASS, Drop, Plugin, PluginError, Rewrite, Said, Verdict

ACTIONS = ("replace", "hold")
HELD = "your message was held back: it contains a word this chat filters"
_WORD_RE = re.compile(r"\w+")


def read_words(path: str) -> frozenset[str]:
    """The words of ``path`` (case folded), or PluginError saying why not."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise PluginError(f"plugin wordfilter: cannot read words file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise PluginError(f"plugin wordfilter: words file {path} is not UTF-8 text") from None
    words: set[str] = set()
    for number, line in enumerate(lines, 1):
        word = line.split("#", 1)[0].strip()
        if not word:
            continue
        if _WORD_RE.fullmatch(word) is None:
            raise PluginError(f"plugin wordfilter: {path} line {number}: one word a line (letters, digits, _)")
        words.add(word.casefold())
    if not words:
        raise PluginError(f"plugin wordfilter: words file {path} has no words")
    return frozenset(words)


class WordFilter(Plugin):
    """Replaces or holds back messages with words from the list."""

    def __init__(self) -> None:
        self.words: frozenset[str] = frozenset()
        self.action = "replace"

    def configure(self, settings: Mapping[str, Any]) -> None:
        unknown = sorted(set(settings) - {"words", "action"})
        if unknown:
            raise PluginError(f"plugin wordfilter: unknown setting {unknown[0]!r} (words, action)")
        path = settings.get("words")
        if not isinstance(path, str) or not path:
            raise PluginError('plugin wordfilter: set words = "PATH" in [plugin.wordfilter] (one word a line)')
        action = settings.get("action", "replace")
        if action not in ACTIONS:
            raise PluginError(f"plugin wordfilter: action must be replace or hold, not {action!r}")
        self.action = action
        self.words = read_words(path)

    def filter(self, text: str) -> str | None:
        """``text`` with each filtered word replaced by asterisks, or None if it has none."""
        words = self.words
        if words.isdisjoint(_WORD_RE.findall(text.casefold())):  # most lines: one pass in C, one set check
            return None
        hits = [m for m in _WORD_RE.finditer(text) if m.group().casefold() in words]
        if not hits:
            return None
        out: list[str] = []
        at = 0
        for m in hits:
            out.append(text[at : m.start()])
            out.append("*" * (m.end() - m.start()))
            at = m.end()
        out.append(text[at:])
        return "".join(out)

    async def on_message(self, said: Said) -> Verdict:
        filtered = self.filter(said.text)
        if filtered is None:
            return PASS
        return Drop(HELD) if self.action == "hold" else Rewrite(filtered)
