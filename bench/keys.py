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

``python -m bench.keys --lengths [--label L]`` instead prints a table: us per
key for every key class (inserts and deletes at the start, middle and end,
cursor and word moves, Home/End, Ctrl-U/K/W, history, a 64-character paste)
on lines of 64, 512 and 2048 characters of ASCII, CJK and combining-heavy
text, on an 80x24 terminal. It uses only ``LineEditor``'s public calls, so
the same file measures another checkout's editor:
``PYTHONPATH=/path/to/other python -m bench.keys --lengths --label before``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from sshchat.chat.completion import complete
from sshchat.chat.hub import Hub
from sshchat.chat.member import NOWHERE
from sshchat.config import Config, chat_settings
from sshchat.store.memory import MemoryStore
from sshchat.term.editor import LineEditor

WIDTH = 80
HEIGHT = 24
CJK = "漢"
LENGTHS = (64, 512, 2048)
ROOMY = 4096  # the table's lines may grow past the chat's cap: inserts at 2048 must still insert


def _editor(text: str) -> LineEditor:
    config = Config()
    ed = LineEditor.for_messages(WIDTH, config.max_message_chars)
    ed.set_prompt("[alice] ")
    ed.feed(text)
    ed.draw()
    return ed


def _seconds_per_key(make: Callable[[], LineEditor], keys: list[str]) -> float:
    """Seconds per key of ``keys`` fed one at a time to a fresh editor from ``make``."""
    feed = make().feed
    t0 = time.perf_counter()
    for key in keys:
        feed(key)
    return (time.perf_counter() - t0) / len(keys)


def _per_key(make: Callable[[], LineEditor], keys: list[str], rounds: int = 3) -> float:
    """Best-of-``rounds`` microseconds per key, each key fed alone."""
    return min(_seconds_per_key(make, keys) for _ in range(rounds)) * 1e6


def _hub(people: int, rooms: int) -> tuple[Hub, Any]:
    hub = Hub(MemoryStore(), chat_settings(Config(max_per_address=people + 10)))
    me = hub.join("alice", None, NOWHERE)
    for i in range(people):
        hub.join(f"user{i}", None, NOWHERE)
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


def _text(kind: str, length: int) -> str:
    """``length`` characters (code points) of one kind, with no space: a
    word is the whole line, the worst case for word moves."""
    if kind == "ascii":
        return ("abcdefghij" * (length // 10 + 1))[:length]
    if kind == "cjk":
        return CJK * length
    return ("a\u0301\u0302\u0303" * (length // 4 + 1))[:length]  # each letter with three marks


def _sized_editor(text: str, setup: str = "") -> LineEditor:
    """An 80x24 editor holding ``text``, drawn, after the ``setup`` keys."""
    try:
        ed = LineEditor(WIDTH, max_chars=ROOMY, max_submit=ROOMY, height=HEIGHT)  # type: ignore[call-arg]
    except TypeError:  # an editor that does not know the terminal's height
        ed = LineEditor(WIDTH, max_chars=ROOMY, max_submit=ROOMY)
    ed.set_prompt("[alice] ")
    ed.feed("\x1b[200~" + text + "\x1b[201~" + setup)
    ed.draw()
    return ed


def _one_key(make: Callable[[], LineEditor], key: str, repeats: int) -> float:
    """Best microseconds of one ``key`` fed to a fresh editor (made untimed)."""
    editors = [make() for _ in range(repeats)]
    best = float("inf")
    for ed in editors:
        t0 = time.perf_counter()
        ed.feed(key)
        best = min(best, time.perf_counter() - t0)
    return best * 1e6


def _cycle(make: Callable[[], LineEditor], keys: list[str], rounds: int) -> float:
    """Median over ``rounds`` editors of microseconds per key of ``keys``,
    fed one at a time (a cycle that leaves the line as it was)."""
    times = sorted(_seconds_per_key(make, keys) for _ in range(rounds))
    return times[len(times) // 2] * 1e6


def table(kind: str, length: int, repeats: int = 30) -> dict[str, float]:
    """Microseconds per key of each key class on one line."""
    text = _text(kind, length)
    ch = "x" if kind == "ascii" else (CJK if kind == "cjk" else "e")
    middle = "\x01" + "\x06" * (length // 8)  # Home, then a quarter of the letters in (marks count with theirs)
    if kind != "combining":
        middle = "\x01" + "\x06" * (length // 2)
    out: dict[str, float] = {}

    def ed(setup: str = "") -> Callable[[], LineEditor]:
        return lambda: _sized_editor(text, setup)

    cycle = [ch, "\x7f"] * 10  # insert, Backspace: the line as it was
    out["insert+backspace at start"] = _cycle(ed("\x01"), cycle, repeats)
    out["insert+backspace in middle"] = _cycle(ed(middle), cycle, repeats)
    out["insert+backspace at end"] = _cycle(ed(), cycle, repeats)
    out["delete at start"] = _one_key(ed("\x01"), "\x1b[3~", repeats)
    out["ctrl-b/ctrl-f in middle"] = _cycle(ed(middle), ["\x02", "\x06"] * 10, repeats)
    out["home/end"] = _cycle(ed(), ["\x01", "\x05"] * 5, repeats)
    out["alt-b/alt-f (no spaces)"] = _cycle(ed(), ["\x1bb", "\x1bf"] * 5, repeats)
    out["ctrl-u at end"] = _one_key(ed(), "\x15", repeats)
    out["ctrl-k at start"] = _one_key(ed("\x01"), "\x0b", repeats)
    out["ctrl-w at end"] = _one_key(ed(), "\x17", repeats)
    recall = text + "\r" + text + "y\r"  # two long lines sent: Up, Up, Down, Down
    updown = ["\x1b[A", "\x1b[A", "\x1b[B", "\x1b[B"]
    out["history up/down"] = _cycle(lambda: _sized_editor("", recall), updown, repeats)
    paste = "\x1b[200~" + _text(kind, 64) + "\x1b[201~"
    out["paste 64 at start (per char)"] = _one_key(ed("\x01"), paste, repeats) / 64
    return out


def print_table(label: str) -> None:
    """One line per key class, one column per (kind, length)."""
    columns = [(kind, n) for kind in ("ascii", "cjk", "combining") for n in LENGTHS]
    results = {col: table(*col) for col in columns}
    names = list(next(iter(results.values())))
    print(f"{label}: us per key, {WIDTH}x{HEIGHT}")
    print(f"{'key class':30s}" + "".join(f"{k[:5]:>6s}{n:>5d}" for k, n in columns))
    for name in names:
        print(f"{name:30s}" + "".join(f"{results[col][name]:11.1f}" for col in columns))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=2000)
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--rooms", type=int, default=1000)
    ap.add_argument("--lengths", action="store_true", help="the table of key classes by line length")
    ap.add_argument("--label", default="this checkout")
    a = ap.parse_args()
    if a.lengths:
        print_table(a.label)
        return
    for name, us in measure(a.keys, a.people, a.rooms).items():
        print(f"{name:36s} {us:9.1f} us/key")


if __name__ == "__main__":
    main()
