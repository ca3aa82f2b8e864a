"""One Config for every setting: defaults < TOML file < environment < flags.

Each later limit or option is a field here, so the file, ``SSHCHAT_<NAME>``
variables and command-line flags all reach it the same way, with the same
type checking and the same error wording.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sshchat.bus.url import check_url
from sshchat.chat.settings import ChatSettings

ENV_PREFIX = "SSHCHAT_"
log = logging.getLogger("sshchat")

# Settings that existed once: a file or environment that still sets one is
# told so (a warning) and the value is ignored, so an upgrade never stops a
# server from starting.
RETIRED = {
    "native": "the C packet writer was removed; sshchat is pure Python (fast_path still applies)",
}


class ConfigError(ValueError):
    """A setting that cannot be used; ``str()`` says which and why."""


class UsageError(ConfigError):
    """Settings that cannot go together (e.g. ``--workers 2`` without ``--bus``).

    Exit status 2, as argparse gives a command line it cannot use: the
    settings are each valid, the way they are combined is not.
    """


# Variables with the prefix that are not settings.
_NOT_SETTINGS = {ENV_PREFIX + "CONFIG"}


CLUSTER_NEEDS_SHARED_DB = "a cluster needs a shared database: --db postgresql://USER@HOST:PORT/NAME"


# What the server offers decides what a client can pick, and the client picks
# by its own order. Measured per 156-byte packet on this machine, in Python:
# AES-GCM 2.4 us, AES-CTR with HMAC-SHA2-256 (EtM) 4.2 us, AES-CTR with
# UMAC-64 12 us, chacha20-poly1305 16-28 us. Leaving chacha20 and UMAC out
# of the offer moves OpenSSH (chacha20 first, then AES-CTR with UMAC) and
# PuTTY to the cheap ones; every SSH client of the last 15 years has AES-CTR
# and HMAC-SHA2. CBC stays out, as in asyncssh's defaults. A fixed list: an
# algorithm a newer asyncssh adds is offered once it is added here.
DEFAULT_CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr"
DEFAULT_MACS = (
    "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512,"
    "hmac-sha1-etm@openssh.com,hmac-sha1"
)


@dataclass(frozen=True)
class Config:
    """Every setting of the server, with its default."""

    host: str = "0.0.0.0"
    port: int = 2222
    host_key: str = "keys/host"
    # A SQLite file, or postgresql://USER@HOST:PORT/NAME (also postgres://): a database
    # shared by the nodes of a cluster (asyncpg: pip install '.[cluster]' in sshchat's folder)
    db: str = "sshchat.db"
    db_connect_wait: float = 5.0  # seconds a starting server retries an unreachable PostgreSQL
    # Fan-out between processes: "" = in-process (one server alone); redis://HOST:PORT/DB
    # makes this server a node of a cluster (it needs a shared --db postgresql://).
    bus: str = ""
    bus_stream_cap: int = 100_000  # entries the Redis stream keeps (about: MAXLEN ~)
    bus_gap_wait: float = 0.2  # seconds a missing message is waited for before it is read from the store
    bus_start_wait: float = 5.0  # seconds to keep trying to reach Redis at start
    # Processes of this node accepting on one port (SO_REUSEPORT), supervised
    # by the parent; "auto": one per core. More than 1 needs a bus.
    workers: int = 1
    log_level: str = "info"
    log_format: str = "human"  # human, or json: one object per line, for log collectors (README "Logs")
    # HOST:PORT to serve Prometheus metrics on at /metrics ("" = off; port 0 = a free one, logged).
    # With --workers N, worker k serves on PORT+k-1 (metrics_address_of_worker).
    metrics: str = ""
    event_loop: str = "auto"  # auto (uvloop if installed), uvloop, asyncio
    fast_path: bool = True  # ssh/patches/: trims of asyncssh's per-packet and per-login work
    # Comma-separated SSH ciphers and MACs to offer (see DEFAULT_CIPHERS);
    # empty: asyncssh's whole default lists.
    ciphers: str = DEFAULT_CIPHERS
    macs: str = DEFAULT_MACS
    admin_keys: str = ""  # authorized_keys file: these keys are operators
    allowlist: str = ""  # authorized_keys file: when set, only these keys may connect
    motd: str = ""  # file with the message of the day
    server_name: str = "sshchat"
    # What people may send.
    max_message_chars: int = 1024
    max_line_chars: int = 16384  # an unterminated line longer than this ends the session
    rate_burst: int = 10  # messages (and commands) at once...
    rate_per_second: float = 1.0  # ...then this many per second
    input_bytes_per_minute: int = 256 * 1024  # more than this from one connection ends it
    # Server time one connection's input (keys, resizes) may take: this many ms a
    # second, in bursts of up to input_ms_burst; over it, its reading pauses, and
    # after input_slowdowns pauses with no full recovery in between it is cut off.
    input_ms_per_second: float = 50.0
    input_ms_burst: float = 500.0
    input_slowdowns: int = 5
    # The same, for all connections from one address together (an IPv6 /64; a /48
    # has ten times this): a few connections' worth, not max_per_address times one.
    input_ms_per_address: float = 150.0
    input_ms_burst_per_address: float = 500.0
    # What people get.
    history_on_join: int = 20
    notice_burst: int = 5  # joins/leaves shown at once per room within notice_window;
    notice_window: float = 2.0  # beyond that, summed up in one line a second
    max_rooms: int = 1000  # rooms in all (they are kept for good)
    max_rooms_per_person: int = 20  # rooms one key (or keyless name) may create
    # Rooms one person may be in at once: a /nick is announced (and saved) in
    # each, and their rooms travel with every presence update of a cluster.
    max_rooms_joined: int = 50
    # Keyless people cost nothing to make anew, so what they make is bounded
    # by address and by time, and part of max_rooms is kept for people with a key.
    max_rooms_per_address: int = 5  # rooms keyless people from one address (IPv6: one /64) may have
    keyless_room_share: float = 0.5  # keyless people may make rooms up to this share of max_rooms
    keyless_room_ttl: float = 3600.0  # a room made without a key, empty this long, is removed
    # A new key costs nothing either: rooms made with keys are capped per address
    # too, and the last share of max_rooms goes one room per address.
    max_keyed_rooms_per_address: int = 20  # rooms made with a key from one address (IPv6: one /64)
    room_reserve: float = 0.1  # the last this share of max_rooms: only addresses that have made no room
    names_per_key: int = 3  # names one key may hold registered (each /nick registers one)
    names_per_address_per_hour: int = 10  # names one address (IPv6: one /64; its /48 ten times) may register an hour
    history_per_call: int = 200  # most messages one /history shows
    history_in_memory: int = 200  # messages kept in memory per room, for joins without a disk read
    outbox_limit: int = 256 * 1024  # unsent bytes before a non-reading client is cut off
    # Connections.
    max_connections: int = 10000  # in all
    max_per_address: int = 16  # from one source address
    max_startups: int = 100  # still in the SSH handshake (OpenSSH's MaxStartups)
    new_connections_burst: int = 20  # new connections one address (IPv6: one /64) may open at once...
    new_connections_per_minute: float = 60.0  # ...and then per minute
    offence_threshold: int = 10  # refused logins or floods from one address...
    offence_window: float = 60.0  # ...within this many seconds...
    offence_block: float = 600.0  # ...block it for this long
    idle_away: float = 600.0  # idle this long: marked away (0: never)
    idle_kick: float = 0.0  # idle this long: disconnected (0: never)
    login_timeout: float = 30.0
    keepalive_interval: float = 30.0
    keepalive_count_max: int = 3
    shutdown_grace: float = 3.0  # seconds to let goodbyes reach clients
    # Plugins (README "Plugins"): entry-point names (group sshchat.plugins) or
    # module:attr, each with its settings in a TOML table [plugin.NAME].
    plugins: tuple[str, ...] = ()
    plugin: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # Seconds a plugin's message hook may take (the sender's next lines wait
    # for it, nobody else's do); past it the message goes on as it was.
    plugin_timeout: float = 0.2
    plugin_task_timeout: float = 5.0  # seconds a join, leave or command hook may take (in the background)


def chat_settings(config: Config) -> ChatSettings:
    """The chat core's settings, each from the Config field of its name.

    Written out field by field: mypy checks every name, and ChatSettings has
    no defaults, so a field left out here is an error at once, not a second
    default that silently wins.
    """
    c = config
    return ChatSettings(
        server_name=c.server_name,
        max_message_chars=c.max_message_chars,
        rate_burst=c.rate_burst,
        rate_per_second=c.rate_per_second,
        history_on_join=c.history_on_join,
        history_per_call=c.history_per_call,
        history_in_memory=c.history_in_memory,
        offence_threshold=c.offence_threshold,
        offence_window=c.offence_window,
        offence_block=c.offence_block,
        idle_away=c.idle_away,
        idle_kick=c.idle_kick,
        max_rooms=c.max_rooms,
        max_rooms_per_person=c.max_rooms_per_person,
        max_rooms_joined=c.max_rooms_joined,
        max_rooms_per_address=c.max_rooms_per_address,
        keyless_room_share=c.keyless_room_share,
        keyless_room_ttl=c.keyless_room_ttl,
        max_keyed_rooms_per_address=c.max_keyed_rooms_per_address,
        room_reserve=c.room_reserve,
        names_per_key=c.names_per_key,
        names_per_address_per_hour=c.names_per_address_per_hour,
        notice_burst=c.notice_burst,
        notice_window=c.notice_window,
    )


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("human", "json")  # as sshchat/logs.py's FORMATS (config imports no logging code)


def _convert(name: str, value: Any, origin: str) -> Any:
    """Coerce ``value`` to the type of field ``name``, or raise ConfigError."""
    kind = _FIELDS[name].type
    if name == "workers" and isinstance(value, str) and value.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        if kind == "tuple[str, ...]":  # a TOML list, or "a,b" from the environment
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
                raise ValueError
            return tuple(v.strip() for v in items if v.strip())
        if kind == "dict[str, dict[str, Any]]":  # TOML tables: [plugin.NAME]
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise ValueError
            return {str(k): dict(v) for k, v in value.items()}
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {name} must be {_describe_field(name)}, not {value!r}") from None


def _describe(kind: object) -> str:
    return {
        "int": "a whole number", "float": "a number", "bool": "true or false",
        "tuple[str, ...]": "a list of names", "dict[str, dict[str, Any]]": "tables such as [plugin.NAME]",
    }.get(
        str(kind), "text"
    )


def _describe_field(name: str) -> str:
    return "a whole number or auto" if name == "workers" else _describe(_FIELDS[name].type)


def _validate(config: Config) -> Config:
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, not {config.port}")
    if config.event_loop not in ("auto", "uvloop", "asyncio"):
        raise ConfigError("event_loop must be auto, uvloop or asyncio")
    if config.log_level.lower() not in _LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(_LOG_LEVELS)}")
    if config.log_format not in _LOG_FORMATS:
        raise ConfigError(f"log_format must be human or json, not {config.log_format!r}")
    for name in (
        "max_message_chars", "max_line_chars", "outbox_limit", "rate_burst", "rate_per_second",
        "input_bytes_per_minute", "input_ms_per_second", "input_ms_burst", "input_slowdowns",
        "input_ms_per_address", "input_ms_burst_per_address",
        "max_connections", "max_per_address", "max_startups",
        "new_connections_burst", "new_connections_per_minute", "workers", "max_rooms_joined",
        "plugin_timeout", "plugin_task_timeout",
    ):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    for name in ("history_on_join", "history_in_memory", "db_connect_wait"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must not be negative")
    for name in ("keyless_room_share", "room_reserve"):
        if not 0 <= getattr(config, name) <= 1:
            raise ConfigError(f"{name} is a share of max_rooms: from 0 to 1")
    if config.metrics:
        metrics_address(config.metrics)
    if config.bus:
        try:
            check_url(config.bus)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if not config.db.startswith(("postgresql://", "postgres://")):
            raise UsageError(CLUSTER_NEEDS_SHARED_DB)
        for name in ("bus_stream_cap", "bus_gap_wait", "bus_start_wait"):
            if getattr(config, name) <= 0:
                raise ConfigError(f"{name} must be positive")
    return config


def metrics_address(text: str) -> tuple[str, int]:
    """``metrics``' (host, port): HOST:PORT, [IPv6]:PORT; a UsageError says
    what is wrong (exit 2, as with any unusable flag)."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not sep or not host or not 0 <= port <= 65535:
        raise UsageError(f"metrics must be HOST:PORT (e.g. 127.0.0.1:9100; port 0 picks a free one), not {text!r}")
    return host, port


def metrics_address_of_worker(text: str, index: int) -> str:
    """Worker ``index`` (from 1) of ``--workers``: processes cannot share the
    metrics port (each has its own numbers), so worker k serves on PORT+k-1;
    port 0 stays 0 (each picks a free one and logs it)."""
    host, port = metrics_address(text)
    if port:
        port += index - 1
        if port > 65535:
            raise UsageError(f"metrics: worker {index} would serve on port {port}, past 65535")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _retired(name: str, where: str) -> bool:
    """Warn about a retired setting; True if ``name`` is one."""
    why = RETIRED.get(name)
    if why is not None:
        log.warning("%s is ignored: %s", where, why)
    return why is not None


def read_file(path: str) -> dict[str, Any]:
    """Settings from a TOML file; unknown keys are an error, not a silent typo."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if _retired(name, f"{path}: setting {key!r}"):
            continue
        if name not in _FIELDS:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        settings[name] = _convert(name, value, path)
    return settings


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ``SSHCHAT_<NAME>`` variables (SSHCHAT_CONFIG excepted)."""
    settings: dict[str, Any] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var in _NOT_SETTINGS:
            continue
        name = var[len(ENV_PREFIX) :].lower()
        if _retired(name, f"environment variable {var}"):
            continue
        if name not in _FIELDS:
            raise ConfigError(f"unknown environment variable {var}")
        settings[name] = _convert(name, value, var)
    return settings


def load(
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Merge the layers; flags given as None count as not given."""
    env = env or {}
    merged: dict[str, Any] = {}
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG")
    if config_file:
        merged.update(read_file(config_file))
    merged.update(from_env(env))
    for name, value in (flags or {}).items():
        if value is not None:
            merged[name] = _convert(name, value, "--" + name.replace("_", "-"))
    return check_workers(_validate(Config(**merged)))


def check_workers(config: Config) -> Config:
    """Several workers are one chat only through a bus: without one, each
    would be a chat of its own that people land in by chance."""
    if config.workers == 1 or config.bus:
        return config
    raise UsageError(f"--workers {config.workers} needs --bus: without one, each worker would be a separate chat")
