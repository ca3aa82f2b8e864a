"""Server time per key, for the worst case of each key class.

``python -m bench.keys [--keys K] [--people N] [--rooms M]``

Why: the server runs every session on one event loop, so a key whose
handling grows with something the sender controls (the line's length, its
combining marks) or with the server's size (people online, rooms) lets one
client freeze the chat for everyone (issue 14). This drives the line editor
and Tab completion in-process, with no sockets, one key per call (as if
each key came in its own SSH packet, the worst case for redrawing), and
prints microseconds per key, best of a few rounds, for each class:

- cursor moves (Ctrl-B / Ctrl-F) on "a" followed by as many combining
  marks as the line holds;
- a character typed at the end of a 2000-character CJK line;
- Backspace and Ctrl-W at the end of the CJK line;
- Home / End on the CJK line;
- an edit at the start of the CJK line (the whole line moves: redrawn);
- Alt-B / Alt-F on a line with no space (a word is the whole line);
- a paste of 2000 CJK characters (per key of the paste);
- Tab after a prefix that matches nothing, with N people and M rooms.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from sshchat.chat.completion import complete
from sshchat.chat.hub import Hub
from sshchat.chat.message import Message
from sshchat.config import Config, chat_settings
from sshchat.store.memory import MemoryStore
from sshchat.term.editor import LineEditor

WIDTH = 80
CJK = "漢"


class _Quiet:
    """An outlet that drops what the hub sends: only the keys' cost counts."""

    def deliver(self, msg: Message, elsewhere: bool = False) -> None:
        pass

    def notice(self, text: str) -> None:
        pass

    def prompt_changed(self) -> None:
        pass

    def close(self, reason: str) -> None:
        pass


def _editor(text: str) -> LineEditor:
    config = Config()
    ed = LineEditor.for_messages(WIDTH, config.max_message_chars)
    ed.set_prompt("[alice] ")
    ed.feed(text)
    ed.draw()
    return ed


def _per_key(make: Callable[[], LineEditor], keys: list[str], rounds: int = 3) -> float:
    """Best-of-``rounds`` microseconds per key, each key fed alone."""
    best = float("inf")
    for _ in range(rounds):
        ed = make()
        feed = ed.feed
        t0 = time.perf_counter()
        for key in keys:
            feed(key)
        best = min(best, (time.perf_counter() - t0) / len(keys))
    return best * 1e6


def _hub(people: int, rooms: int) -> tuple[Hub, Any]:
    hub = Hub(MemoryStore(), chat_settings(Config(max_per_address=people + 10)))
    me = hub.join("alice", None, _Quiet())
    for i in range(people):
        hub.join(f"user{i}", None, _Quiet())
    for i in range(rooms):  # only names matter to completion: no need to go through /join
        hub.rooms[f"#room{i}"] = SimpleNamespace(name=f"#room{i}")  # type: ignore[assignment]
    return hub, me


def measure(keys: int, people: int, rooms: int) -> dict[str, float]:
    """Microseconds per key for each key class."""
    cap = Config().max_message_chars * 2
    marks = "a" + "\u0301" * (cap - 1)
    cjk = CJK * 2000
    out: dict[str, float] = {}
    out["ctrl-b/ctrl-f, combining line"] = _per_key(lambda: _editor(marks), ["\x02", "\x06"] * (keys // 2))
    out["typed char at end, CJK line"] = _per_key(
        lambda: _editor(CJK * 1990), [CJK] * min(keys, 10)  # the line holds 2048: 10 more fit
    )
    out["left/right, CJK line"] = _per_key(lambda: _editor(cjk), ["\x1b[D", "\x1b[C"] * (keys // 2))
    out["typed char at start, CJK line"] = _per_key(
        lambda: _editor(CJK * 1990 + "\x01"), [CJK, "\x02", "\x1b[3~"] * 100  # insert, back, delete
    )
    out["alt-b/alt-f, no spaces"] = _per_key(lambda: _editor(CJK * 2000), ["\x1bb", "\x1bf"] * (keys // 2))
    out["backspace, CJK line"] = _per_key(lambda: _editor(cjk), ["\x7f"] * min(keys, 1000))
    out["ctrl-w, CJK words"] = _per_key(lambda: _editor((CJK * 3 + " ") * 500), ["\x17"] * min(keys, 400))
    out["home/end, CJK line"] = _per_key(lambda: _editor(cjk), ["\x01", "\x05"] * (keys // 2))
    paste = "\x1b[200~" + cjk + "\x1b[201~"
    out["paste 2000 CJK (per char)"] = _per_key(lambda: _editor(""), [paste], rounds=3) / len(cjk)
    hub, me = _hub(people, rooms)

    def tabbing() -> LineEditor:
        ed = _editor("zzz")
        ed.completer = lambda before: complete(hub, me, before)
        return ed

    def room_tabbing() -> LineEditor:
        ed = _editor("/join #zzz")
        ed.completer = lambda before: complete(hub, me, before)
        return ed

    out[f"tab no match, {people} people"] = _per_key(tabbing, ["\t"] * keys)
    out[f"tab no match, {rooms} rooms"] = _per_key(room_tabbing, ["\t"] * keys)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=2000)
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--rooms", type=int, default=1000)
    a = ap.parse_args()
    for name, us in measure(a.keys, a.people, a.rooms).items():
        print(f"{name:36s} {us:9.1f} us/key")


if __name__ == "__main__":
    main()
