"""The load generator's command line: what can be asked for, and what cannot.

Every combination that would measure something other than it says (a typed
line longer than its time to type, a line wider than the terminal, a
dialect the mode was never checked against) is refused here, with the
reason, before anything starts.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os

from bench import procstats
from bench.client import DIALECTS, PTY_COLUMNS

TIMED_PER_SECOND = 10_000  # lines a second the generator parses and times, by default
SSH_CHAT_COLUMNS = 80  # ssh-chat's terminal width without a PTY
RATE = 0.8  # messages a second per sender, by default
TYPING_RATE = 0.2  # the same with --typing: a 64-character line every 5 s, 4.3 s of it typing at 15 keys/s
KEYS_PER_SECOND = 15.0  # a fast typist
PROMPT_ROOM = 30  # columns left for the prompt's brackets and room name (and a timestamp) next to a line


def _loopback(host: str) -> str:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{host!r}: give an IPv4 address in 127.0.0.0/8") from None
    if addr.version != 4 or not addr.is_loopback:
        raise argparse.ArgumentTypeError(f"{host}: only 127.0.0.0/8 is allowed (this is a local benchmark)")
    return host


def _ports(text: str) -> list[int]:
    try:
        ports = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a port or ports as P1,P2") from None
    if not all(0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError(f"{text!r}: ports are 1..65535")
    return ports


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="Measure an SSH chat server with N simulated users over real SSH connections.",
    )
    where = p.add_argument_group("server")
    where.add_argument("--spawn", action="store_true",
                       help="start `python -m sshchat serve` on 127.0.0.1:0 in a temp dir and stop it at the end")
    where.add_argument("--host", type=_loopback, default="127.0.0.1", help="server address (127.x only)")
    where.add_argument("--port", type=_ports, help="port of an already running server; several nodes of one "
                       "cluster as P1,P2,...: user i connects to the (i mod count)th")
    where.add_argument("--server-pid", type=int, action="append", default=[],
                       help="pid of the attached server, for CPU and RSS (with its children: --workers); "
                       "repeat for several nodes, the figures are their sum")
    where.add_argument("--service-pid", type=int, action="append", default=[],
                       help="pid of a service the server uses (redis-server, postgres), with its children: "
                       "its CPU per delivery is reported apart")
    where.add_argument("--server-src", metavar="DIR",
                       help="with --spawn: run the server from this source tree (e.g. `git archive` of a commit)")
    where.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                       help="extra environment for --spawn, e.g. SSHCHAT_HISTORY_ON_JOIN=0")
    load = p.add_argument_group("load")
    load.add_argument("--users", type=int, default=100, help="SSH connections (default 100)")
    load.add_argument("--senders", type=int, help="how many of them send (default all)")
    load.add_argument("--rate", type=float,
                      help=f"messages per second per sender (default {RATE:g}; {TYPING_RATE:g} with --typing)")
    load.add_argument("--duration", type=float, default=20.0, help="measured seconds (default 20)")
    load.add_argument("--warmup", type=float, default=3.0, help="seconds of sending before measuring (default 3)")
    load.add_argument("--size", type=int, default=64, help="characters per message (default 64)")
    load.add_argument("--logins-only", action="store_true",
                      help="only log N users in as fast as --concurrency allows; report logins/s")
    load.add_argument("--concurrency", type=int, default=50, help="logins in flight at once (default 50)")
    load.add_argument("--addresses", type=int, default=0,
                      help="distinct 127.x source addresses (default: one per user)")
    load.add_argument("--name-prefix", default="u", help="login names are PREFIX0, PREFIX1, ... (default u)")
    load.add_argument("--cipher", help="SSH cipher (default: the first of asyncssh's order the server offers)")
    load.add_argument("--kex", help="SSH key exchange, e.g. curve25519-sha256 (default: asyncssh's order, "
                                    "mlkem768x25519-sha256 first)")
    load.add_argument("--dialect", choices=sorted(DIALECTS), default="sshchat",
                      help="how the server takes and shows lines: sshchat (LF ends a line) or ssh-chat (CR "
                           "ends it; typed text is echoed)")
    people = p.add_argument_group("people at terminals")
    people.add_argument("--typing", action="store_true",
                        help="senders type: one SSH packet per key at --keys-per-second, then Enter (CR); "
                             "latency counts from Enter. Implies --pty all")
    people.add_argument("--keys-per-second", type=float, default=KEYS_PER_SECOND,
                        help=f"with --typing: how fast each sender types (default {KEYS_PER_SECOND:g})")
    people.add_argument("--pty", choices=("none", "senders", "all"),
                        help=f"who opens a terminal (xterm, {PTY_COLUMNS} columns), as interactive ssh does; "
                             "a sender with one ends lines with CR (default: all with --typing, else none)")
    people.add_argument("--ack-every-read", action="store_true",
                        help="every user gives the server its window back after each read (one WINDOW_ADJUST "
                             "packet per packet received), as clients on Go's x/crypto/ssh do")
    gen = p.add_argument_group("generator and report")
    gen.add_argument("--processes", type=int, default=1, help="generator processes to split users over (default 1)")
    gen.add_argument("--sample-every", type=int, default=0, metavar="K",
                     help="time every line at 1 in K users, count at the others (default: K so that about "
                          "10k lines a second are timed)")
    gen.add_argument("--plain-clients", action="store_true",
                     help="asyncssh's clients as they are, without the generator's speed-ups (bench/fastrecv.py)")
    gen.add_argument("--late-ms", type=float, default=1000.0, help="a delivery later than this is late (default 1000)")
    gen.add_argument("--grace", type=float, default=5.0, help="seconds after the last send for stragglers (default 5)")
    gen.add_argument("--login-timeout", type=float, default=30.0, help="seconds per login (default 30)")
    gen.add_argument("--settle-timeout", type=float, default=30.0,
                     help="longest wait for the server to go idle after logins (default 30)")
    gen.add_argument("--json", metavar="PATH", help="write the report here as one JSON object")
    return p


def _check_terminals(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--typing, --pty: only where what they measure is what they say."""
    if args.pty is None:
        args.pty = "all" if args.typing else "none"
    if args.dialect == "ssh-chat" and (args.typing or args.pty != "none"):
        # its line editor's output with a PTY was never checked against the parser
        p.error("--typing and --pty are for --dialect sshchat only: ssh-chat's terminal output is not parsed")
    if args.typing and args.pty == "none":
        p.error("--typing needs the senders to have a terminal: --pty senders or all")
    if args.pty != "none":
        widest = len(f"{args.name_prefix}{args.users - 1}") + args.size + PROMPT_ROOM
        if widest > PTY_COLUMNS:
            p.error(f"--pty: a line (name, prompt and --size) must fit in {PTY_COLUMNS} columns; here {widest}")
    if args.typing:
        if not 0 < args.keys_per_second <= 1000:
            p.error("--keys-per-second must be in (0, 1000]")
        typing = args.size / args.keys_per_second
        if typing > 1 / args.rate:
            p.error(f"--typing: a {args.size}-character line takes {typing:.2f} s at {args.keys_per_second:g} keys/s, "
                    f"longer than 1/--rate = {1 / args.rate:.2f} s; give --rate at most "
                    f"{args.keys_per_second / args.size:.3f}, or a smaller --size or more --keys-per-second")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _parser()
    args = p.parse_args(argv)
    if args.spawn == (args.port is not None):
        p.error("give either --spawn or --port")
    if args.users < 1 or args.users > 60000:
        p.error("--users must be 1..60000")
    args.senders = args.users if args.senders is None else args.senders
    if not 0 <= args.senders <= args.users:
        p.error("--senders must be 0..--users")
    if args.rate is None:
        args.rate = TYPING_RATE if args.typing else RATE
    if args.rate <= 0 or args.duration < 0 or args.warmup < 0 or args.grace < 0:
        p.error("--rate must be > 0; --duration, --warmup and --grace >= 0")
    if not 1 <= args.processes <= args.users:
        p.error("--processes must be 1..--users")
    if args.concurrency < 1 or args.size < 40:
        p.error("--concurrency must be >= 1 and --size >= 40")
    if args.dialect == "ssh-chat":
        if args.spawn:
            p.error("--dialect ssh-chat measures ssh-chat: give its --port (--spawn starts sshchat)")
        # its echo of the typed line wraps at 80 columns with a newline, which would count as a delivery
        widest = len(f"[{args.name_prefix}{args.users - 1}] ") + args.size
        if widest >= SSH_CHAT_COLUMNS:
            p.error(f"--dialect ssh-chat: '[NAME] ' and --size must stay under {SSH_CHAT_COLUMNS} columns "
                    f"(ssh-chat wraps its echo there); here {widest}")
    _check_terminals(p, args)
    if args.addresses <= 0:
        args.addresses = args.users
    if args.sample_every <= 0:
        deliveries = args.senders * args.rate * args.users
        args.sample_every = max(1, math.ceil(deliveries / TIMED_PER_SECOND))
    for item in args.server_env:
        if "=" not in item:
            p.error(f"--server-env {item!r}: expected NAME=VALUE")
    if args.server_src is not None and not (args.spawn and os.path.isdir(os.path.join(args.server_src, "sshchat"))):
        p.error("--server-src needs --spawn and a directory that holds sshchat/")
    for pid in args.server_pid + args.service_pid:
        if not procstats.alive(pid):
            p.error(f"pid {pid}: no such process")
    args.ports = args.port or []
    args.port = args.ports[0] if args.ports else None
    return args
