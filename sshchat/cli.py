"""The command line: ``sshchat serve`` and ``sshchat keygen``.

Every failure a person can cause (bad option, unreadable key, busy port)
ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Callable

from sshchat import __version__
from sshchat.app import StartError, run
from sshchat.config import ConfigError, UsageError, load, metrics_address_of_worker
from sshchat.ssh.hostkey import HostKeyError, fingerprint, generate
from sshchat.ssh.keyfiles import KeyFileError
from sshchat.store import StoreError, StoreUnreachable
from sshchat.workers.link import ParentLink
from sshchat.workers.supervisor import supervise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sshchat", description="A chat server people reach with plain ssh."
    )
    parser.add_argument("--version", action="version", version=f"sshchat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the chat server")
    # Defaults are None so that only flags given on the command line
    # override the config file and the environment.
    serve.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default 2222; 0 picks a free one)")
    serve.add_argument("--host-key", help="host key file, made if missing (default keys/host)")
    serve.add_argument(
        "--db", help="SQLite database file (default sshchat.db), or postgresql://USER@HOST:PORT/NAME for a cluster"
    )
    serve.add_argument("--bus", help="redis://HOST:PORT/DB: a node of a cluster (default: none, one server alone)")
    serve.add_argument("--admin-keys", help="authorized_keys file of operator keys")
    serve.add_argument("--allowlist", help="authorized_keys file: only these keys may connect")
    serve.add_argument("--motd", help="file with the message of the day")
    serve.add_argument("--config", help="TOML file of settings (also $SSHCHAT_CONFIG)")
    serve.add_argument("--log-level", help="debug, info, warning or error (default info)")
    serve.add_argument("--event-loop", help="auto (uvloop if installed), uvloop or asyncio")
    serve.add_argument(
        "--metrics", metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (with --workers N: worker k on PORT+k-1)",
    )
    serve.add_argument("--workers", help="processes accepting on the port, or auto (one per core); needs a bus")
    # A worker of --workers: its settings come from the supervisor, on stdin.
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)

    keygen = sub.add_parser("keygen", help="write a new ed25519 host key")
    keygen.add_argument("path", nargs="?", default="keys/host", help="default keys/host")
    keygen.add_argument("--force", action="store_true", help="replace an existing key")
    return parser


def _setup_logging(level: str, worker: int | None = None) -> None:
    """``worker``: its lines say which worker wrote them (they share the parent's stderr)."""
    who = f"worker {worker}: " if worker else ""
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s {who}%(message)s",
        stream=sys.stderr,
    )
    # asyncssh logs every connection and channel at INFO: noise, and CPU.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def _serve(args: argparse.Namespace) -> int:
    if args.worker is not None:
        return _work(args.worker)
    flags = {
        "host": args.host,
        "port": args.port,
        "host_key": args.host_key,
        "db": args.db,
        "bus": args.bus,
        "log_level": args.log_level,
        "admin_keys": args.admin_keys,
        "allowlist": args.allowlist,
        "motd": args.motd,
        "event_loop": args.event_loop,
        "workers": args.workers,
        "metrics": args.metrics,
    }
    config = load(args.config, os.environ, flags)
    _setup_logging(config.log_level)
    if config.workers > 1:
        with asyncio.Runner() as runner:  # the supervisor: no chat work, no need for uvloop
            return runner.run(supervise(config))
    with asyncio.Runner(loop_factory=_loop_factory(config.event_loop)) as runner:
        runner.run(run(config))
    return 0


def _work(index: int) -> int:
    """One worker of ``--workers``: the single-process server on a shared port."""
    parent = ParentLink.from_stdin()
    config = parent.config
    _setup_logging(config.log_level, worker=index)
    if config.metrics:  # one port each: worker k on PORT+k-1
        config = dataclasses.replace(config, metrics=metrics_address_of_worker(config.metrics, index))
    with asyncio.Runner(loop_factory=_loop_factory(config.event_loop)) as runner:
        runner.run(run(config, parent))
    return 0


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's faster transport where installed (pip install '.[fast]' in sshchat's folder)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("event_loop is uvloop, but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def _keygen(args: argparse.Namespace) -> int:
    key = generate(args.path, force=args.force)
    print(f"wrote {args.path} ({fingerprint(key)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sshchat`` script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return 2
    try:
        return _serve(args) if args.command == "serve" else _keygen(args)
    except (UsageError, StoreUnreachable) as e:  # a wrong setting, or a cluster's database down or misnamed
        print(f"sshchat: {e}", file=sys.stderr)
        return 2
    except StartError as e:
        print(f"sshchat: {e}", file=sys.stderr)
        return e.status
    except (ConfigError, HostKeyError, KeyFileError, StoreError) as e:
        print(f"sshchat: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were set
        return 130
