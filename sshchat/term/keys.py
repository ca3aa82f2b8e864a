"""Split raw terminal input into keys.

A key is either one printable character (a ``str`` of length 1) or the name
of an editing key (a longer ``str`` such as ``"left"``), so the editor can
tell them apart by length alone. Escape sequences may arrive split over
several reads; the decoder holds the incomplete tail until the rest comes.
"""

from __future__ import annotations

# CSI sequences by their parameter string + final byte.
_CSI_KEYS = {
    "A": "up", "B": "down", "C": "right", "D": "left",
    "H": "home", "F": "end",
    "1~": "home", "7~": "home", "4~": "end", "8~": "end",
    "3~": "delete",
    "1;5C": "word-right", "1;5D": "word-left",
    "1;3C": "word-right", "1;3D": "word-left",
    "200~": "paste-start", "201~": "paste-end",
}
_SS3_KEYS = {"A": "up", "B": "down", "C": "right", "D": "left", "H": "home", "F": "end"}
_CONTROL_KEYS = {
    "\r": "enter", "\n": "enter", "\t": "tab",
    "\x7f": "backspace", "\x08": "backspace",
    "\x01": "ctrl-a", "\x02": "left", "\x03": "ctrl-c", "\x04": "ctrl-d",
    "\x05": "ctrl-e", "\x06": "right", "\x0b": "ctrl-k", "\x0c": "ctrl-l",
    "\x0e": "down", "\x10": "up", "\x15": "ctrl-u", "\x17": "ctrl-w",
}
_ALT_KEYS = {"b": "word-left", "f": "word-right", "d": "word-delete", "\x7f": "word-backspace"}

# An escape sequence longer than this is garbage; drop it rather than buffer.
_MAX_SEQUENCE = 32


class KeyDecoder:
    """Stateful decoder from terminal input to keys."""

    def __init__(self) -> None:
        self._pending = ""
        self._after_cr = False

    def feed(self, data: str) -> list[str]:
        """Decode ``data`` (plus anything held back) into a list of keys."""
        data = self._pending + data
        self._pending = ""
        keys: list[str] = []
        i, n = 0, len(data)
        while i < n:
            ch = data[i]
            if ch == "\x1b":
                consumed, key = self._escape(data, i)
                if consumed == 0:  # incomplete: wait for the rest
                    if n - i <= _MAX_SEQUENCE:
                        self._pending = data[i:]
                    break
                i += consumed
                if key:
                    keys.append(key)
                self._after_cr = False
                continue
            i += 1
            if ch == "\n" and self._after_cr:  # CR LF is one Enter
                self._after_cr = False
                continue
            self._after_cr = ch == "\r"
            if ch in _CONTROL_KEYS:
                keys.append(_CONTROL_KEYS[ch])
            elif ch >= " ":
                keys.append(ch)
            # other control characters are not keys we know: dropped
        return keys

    @staticmethod
    def _escape(data: str, i: int) -> tuple[int, str | None]:
        """Parse the sequence at data[i] == ESC: (chars consumed, key or None).

        Returns (0, None) when the sequence is not complete yet.
        """
        if i + 1 >= len(data):
            return 0, None
        intro = data[i + 1]
        if intro == "[":
            j = i + 2
            while j < len(data) and "\x20" <= data[j] <= "\x3f":
                j += 1
            if j >= len(data):
                return 0, None
            if not "\x40" <= data[j] <= "\x7e":  # malformed: drop the ESC [
                return j - i, None
            return j + 1 - i, _CSI_KEYS.get(data[i + 2 : j + 1])
        if intro == "O":
            if i + 2 >= len(data):
                return 0, None
            return 3, _SS3_KEYS.get(data[i + 2])
        return 2, _ALT_KEYS.get(intro)
