"""The command line: ``sshchat serve``, ``sshchat keygen`` and ``sshchat admin``.

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

from sshchat import __version__, admin, logs
from sshchat.app import StartError, run, start_plugins
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
    serve.add_argument("--log-format", help="human (default) or json: one object per line, for log collectors")
    serve.add_argument("--event-loop", help="auto (uvloop if installed), uvloop or asyncio")
    serve.add_argument(
        "--metrics", metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (with --workers N: worker k on PORT+k-1)",
    )
    serve.add_argument("--workers", help="processes accepting on the port, or auto (one per core); needs a bus")
    serve.add_argument(
        "--plugin", action="append", metavar="NAME",
        help="enable a plugin: an installed one's name (dice, wordfilter) or module:attr; repeatable",
    )
    # A worker of --workers: its settings come from the supervisor, on stdin.
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)

    keygen = sub.add_parser("keygen", help="write a new ed25519 host key")
    keygen.add_argument("path", nargs="?", default="keys/host", help="default keys/host")
    keygen.add_argument("--force", action="store_true", help="replace an existing key")
    admin.add_parser(sub)
    return parser


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
        "log_format": args.log_format,
        "admin_keys": args.admin_keys,
        "allowlist": args.allowlist,
        "motd": args.motd,
        "event_loop": args.event_loop,
        "workers": args.workers,
        "plugins": args.plugin,  # given: these, instead of the config file's list
        "metrics": args.metrics,
    }
    config = load(args.config, os.environ, flags)
    logs.setup(config.log_level, config.log_format)
    if config.workers > 1:
        if config.metrics:  # the last worker's port: past 65535 is said here, once, before any worker starts
            metrics_address_of_worker(config.metrics, config.workers)
        start_plugins(config)  # a plugin that cannot be used stops the start here, not in each worker
        with asyncio.Runner() as runner:  # the supervisor: no chat work, no need for uvloop
            return runner.run(supervise(config))
    with asyncio.Runner(loop_factory=_loop_factory(config.event_loop)) as runner:
        runner.run(run(config))
    return 0


def _work(index: int) -> int:
    """One worker of ``--workers``: the single-process server on a shared port."""
    parent = ParentLink.from_stdin()
    config = parent.config
    logs.setup(config.log_level, config.log_format, worker=index)
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


def _fatal(error: Exception) -> None:
    """The one line a failure to serve ends with (JSON too, once the log is set up as JSON)."""
    logs.console(f"sshchat: {error}", "start_failed", logging.ERROR, error=str(error))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sshchat`` script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return 2
    if args.command == "admin":
        return _admin(args)
    try:
        return _serve(args) if args.command == "serve" else _keygen(args)
    except (UsageError, StoreUnreachable) as e:  # a wrong setting, or a cluster's database down or misnamed
        _fatal(e)
        return 2
    except StartError as e:
        _fatal(e)
        return e.status
    except (ConfigError, HostKeyError, KeyFileError, StoreError) as e:
        _fatal(e)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were set
        return 130


def _admin(args: argparse.Namespace) -> int:
    """``sshchat admin``: a database that cannot be used is a setting to fix (exit 2, one line)."""
    try:
        return admin.run(args)
    except (ConfigError, StoreError) as e:
        print(f"sshchat admin: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # export | head
        return 0
    except KeyboardInterrupt:
        return 130
