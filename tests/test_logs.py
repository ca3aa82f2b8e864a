"""The server's log: ``--log-format json`` for collectors, the human format
as ever; every login, refusal, moderation action and error one line.

The end-to-end tests read a real ``sshchat serve`` process's stderr, as a
collector would: every line must parse, and the events must carry their
fields, not only words.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sshchat.chat.logged import Throttle, event
from sshchat.chat.refusals import Refusal
from sshchat.logs import HumanFormatter, JsonFormatter
from tests.support.server import ServerProcess, admin_keys_file, connect
from tests.support.waiting import eventually

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
HOSTILE = 'spam\n{"time": "x", "level": "INFO", "event": "login", "name": "root"}\x1b[2J\x1b]0;owned\x07\u2028end'


def parsed(log: list[str]) -> list[dict[str, Any]]:
    """Every line of a JSON log as an object (a line that does not parse fails the test)."""
    lines = []
    for line in "".join(log).splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n" + "".join(log)) from None
        assert isinstance(obj, dict), line
        assert ISO_MS.fullmatch(obj["time"]) and obj["level"] and obj["event"] and "message" in obj, line
        assert None not in obj.values(), line  # None values are left out
        lines.append(obj)
    return lines


def events(log: list[str], event_name: str, /, **fields: Any) -> list[dict[str, Any]]:
    """The lines of event ``event_name`` whose fields include ``fields``."""
    return [e for e in parsed(log) if e["event"] == event_name and all(e.get(k) == v for k, v in fields.items())]


def test_a_json_log_has_one_object_per_line_for_logins_refusals_and_moderation(
    tmp_path: Path, keys: dict[str, asyncssh.SSHKey]
) -> None:
    boss_key = keys["carol"]
    boss_fp = boss_key.get_fingerprint("sha256")
    server = ServerProcess(tmp_path, "--log-format", "json", "--admin-keys", str(admin_keys_file(tmp_path, boss_key)))
    try:

        async def use() -> None:
            alice = await connect(server.port, "alice")
            taken = await connect(server.port, "alice")
            assert await taken.exit_status() == 1
            boss = await connect(server.port, "boss", key=boss_key)
            bob = await connect(server.port, "bob", local_addr=("127.0.0.2", 0))
            bot = await connect(server.port, "alice", command="say hello")  # a bot may not take a person's name
            assert await bot.exit_status() == 1
            boss.line("/kick alice " + HOSTILE)
            assert await alice.exit_status() == 0
            boss.line("/ban bob 1h spamming")
            assert await bob.exit_status() == 0
            await eventually(lambda: bool(events(server.log, "moderation", action="ban")), timeout=10)
            for client in (alice, taken, boss, bob, bot):
                await client.close()

        asyncio.run(use())
    finally:
        assert server.stop() == 0, "".join(server.log)

    log = server.log
    assert events(log, "listening", host="127.0.0.1", port=server.port)
    [login] = events(log, "login", name="alice")
    assert login["kind"] == "line" and login["address"] == "127.0.0.1" and login["room"] == "#lobby"
    assert "fingerprint" not in login  # keyless: None is left out
    assert events(log, "login", name="boss", fingerprint=boss_fp, kind="line")
    [refused] = events(log, "login_refused", name="alice", kind="line")
    assert refused["code"] == "name_taken" and "already in use" in refused["reason"]
    assert events(log, "login_refused", name="alice", kind="bot", code="name_taken")
    [kick] = events(log, "moderation", action="kick")
    assert kick["actor"] == "boss" and kick["actor_fingerprint"] == boss_fp and kick["target"] == "alice"
    assert kick["reason"].startswith("spam") and "\x1b" not in kick["reason"]  # cleaned, as the room read it
    assert events(log, "logout", name="alice", reason="kicked by boss: " + kick["reason"])
    bans = events(log, "moderation", action="ban", reason="spamming", duration="1h")
    assert [b["target"] for b in bans] == ["ip:127.0.0.2/32"] and ISO_MS.fullmatch(bans[0]["until"])
    assert events(log, "logout", name="bob", address="127.0.0.2", reason="banned by boss: spamming")
    assert events(log, "stopped")
    assert not [e for e in parsed(log) if e["event"] == "login" and e.get("name") == "root"]  # nothing forged


def record(message: str, exc_info: bool = False, **fields: Any) -> logging.LogRecord:
    """The record ``event`` logs, as a handler gets it."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("sshchat")
    keep, level = Keep(), logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        event(logging.WARNING, "flood_cut_off", message, exc_info=exc_info, **fields)
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    [kept] = records
    return kept


def test_hostile_words_cannot_forge_a_json_line_or_reach_a_terminal() -> None:
    line = JsonFormatter(worker=2).format(record(f"cutting off: {HOSTILE}", reason=HOSTILE, name="x%sy", room=None))
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line and "\u2028" not in line
    obj = json.loads(line)
    assert obj["reason"] == HOSTILE and obj["message"] == f"cutting off: {HOSTILE}"  # kept whole, just escaped
    assert obj["event"] == "flood_cut_off" and obj["level"] == "WARNING" and obj["worker"] == 2
    assert obj["name"] == "x%sy" and "room" not in obj
    assert list(obj)[:4] == ["time", "level", "event", "message"]


def test_hostile_words_cannot_forge_a_human_line_or_reach_a_terminal() -> None:
    line = HumanFormatter(worker=3).format(record(f"refused {HOSTILE} from 127.0.0.1"))
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line and "\u2028" not in line
    assert line.endswith(
        'WARNING worker 3: refused spam\\n{"time": "x", "level": "INFO", "event": "login", "name": "root"}'
        "\\x1b[2J\\x1b]0;owned\\x07\\u2028end from 127.0.0.1"
    )


def test_an_error_in_json_is_one_line_with_its_traceback_as_a_field() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        rec = record("error handling input", exc_info=True, name="alice")
    obj = json.loads(JsonFormatter().format(rec))
    assert obj["error"] == "ValueError: bad\nthing" and "Traceback (most recent call last)" in obj["traceback"]
    human = HumanFormatter().format(rec)
    assert human.splitlines()[0].endswith("error handling input") and "Traceback" in human  # as before


def sshchat(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sshchat", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=30)


def test_a_bad_log_format_is_one_line(tmp_path: Path) -> None:
    r = sshchat("serve", "--log-format", "xml", "--host", "127.0.0.1", "--port", "0", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == "sshchat: log_format must be human or json, not 'xml'\n"
    (tmp_path / "c.toml").write_text('log_format = "yaml"\n')
    r = sshchat("serve", "--config", "c.toml", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == "sshchat: log_format must be human or json, not 'yaml'\n"


def test_a_failure_to_start_is_one_json_line_too(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = sshchat("serve", "--log-format", "json", "--host", "127.0.0.1", "--port", str(port), "--host-key", "k",
                    cwd=tmp_path)
    assert r.returncode == 1
    *_, last = parsed([r.stderr])
    assert last["event"] == "start_failed" and last["level"] == "ERROR"
    assert last["message"].startswith(f"sshchat: cannot listen on 127.0.0.1:{port}: ")
    assert last["message"].lower().endswith("address already in use") and last["error"] in last["message"]


def test_the_log_format_comes_from_the_environment_too(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={"SSHCHAT_LOG_FORMAT": "json"})
    try:
        assert events(server.log, "listening", port=server.port)
    finally:
        assert server.stop() == 0
    assert events(server.log, "stopped")


def test_everyone_online_when_the_server_stops_has_one_logout_line(tmp_path: Path) -> None:
    """A collector pairs each login with its logout (session lengths): a
    stop must not leave the people then online logged in for ever."""
    server = ServerProcess(tmp_path, "--log-format", "json", env={"SSHCHAT_SHUTDOWN_GRACE": "0.5"})
    try:

        async def use() -> None:
            alice = await connect(server.port, "alice")
            bob = await connect(server.port, "bob", pty=True)
            await eventually(lambda: len(events(server.log, "login")) == 2, timeout=10)
            server.stop()
            for client in (alice, bob):
                await client.close()

        asyncio.run(use())
    finally:
        assert server.stop() == 0, "".join(server.log)
    gone = events(server.log, "logout")
    assert sorted(e["name"] for e in gone) == ["alice", "bob"], gone
    assert all(e["reason"] == "server shutting down" and e["seconds"] >= 0 for e in gone)


def test_the_human_log_reads_as_before_and_says_who_left(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:

        async def use() -> None:
            alice = await connect(server.port, "alice")
            await alice.close()

        asyncio.run(use())
        await_logout = re.compile(r"^\S+ \S+ INFO alice left from 127\.0\.0\.1 \(quit\)$", re.M)
        asyncio.run(eventually(lambda: bool(await_logout.search("".join(server.log))), timeout=10))
    finally:
        assert server.stop() == 0
    log = "".join(server.log)
    assert "sshchat: listening on 127.0.0.1:" in log and "{" not in log
    assert re.search(r"^\S+ \S+ INFO alice joined from 127\.0\.0\.1 \(no key\)$", log, re.M), log


async def test_each_refusal_is_logged_with_its_code(start_server, caplog: pytest.LogCaptureFixture) -> None:
    """A collector (or a counter) counts refusals by a code that never changes, not by their words."""
    server = await start_server(max_per_address=1, admin_keys="")
    caplog.set_level(logging.INFO, "sshchat")
    await server.connect("alice")
    for name in ("bad name!", "alice"):  # an invalid name; a taken one (both from 127.0.0.2)
        client = await server.connect(name, local_addr=("127.0.0.2", 0))
        assert await client.exit_status() == 1
        await client.close()
    await eventually(lambda: len(codes(caplog, "login_refused")) == 2)
    assert codes(caplog, "login_refused") == [Refusal.INVALID_NAME, Refusal.NAME_TAKEN]
    for _ in range(5):
        with pytest.raises(asyncssh.DisconnectError):  # alice holds 127.0.0.1's only place
            await connect(server.port, "three")
    assert codes(caplog, "connection_refused") == [Refusal.PER_ADDRESS]  # once a minute, not once a connection
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "connection_refused"]
    assert line.getMessage().startswith("refused a connection from 127.0.0.1: too many connections")


async def test_a_key_offered_again_and_again_is_one_line_and_counted_each_time(
    start_server, tmp_path: Path, keys: dict[str, asyncssh.SSHKey], caplog: pytest.LogCaptureFixture
) -> None:
    """A key whose admin line has a from= this address does not meet is
    refused at each offer; a client may offer it (anyone's public key, no
    private key needed to offer) hundreds of times a connection: one line a
    minute per address, and /metrics counts every refusal."""
    from tests.test_metrics import scrape, value

    key = keys["mallory"]
    admins = tmp_path / "restricted"
    admins.write_text(f'from="10.0.0.1" {key.export_public_key().decode()}')
    server = await start_server(admin_keys=str(admins), metrics="127.0.0.1:0", shutdown_grace=0.5)
    caplog.set_level(logging.INFO, "sshchat")
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1", server.port, username="mallory", known_hosts=None, client_keys=[key] * 30,
            preferred_auth="publickey",
        )
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "key_refused"]
    assert line.fields["code"] == Refusal.KEY_RESTRICTED  # type: ignore[attr-defined]
    samples = await scrape(server.app.metrics_port)
    assert value(samples, "sshchat_logins_refused_total", reason="key_restricted") == 30


async def test_a_nick_is_logged_so_the_logout_can_be_traced_to_its_login(
    start_server, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(shutdown_grace=0.5)
    caplog.set_level(logging.INFO, "sshchat")
    alice = await server.connect("alice")
    alice.line("/nick alice2")
    await alice.wait_for("alice is now known as alice2")
    await alice.close()

    def fields(name: str) -> list[dict[str, Any]]:
        return [r.fields for r in caplog.records if getattr(r, "event", None) == name]  # type: ignore[attr-defined]

    await eventually(lambda: bool(fields("logout")))
    assert [f["name"] for f in fields("login")] == ["alice"]
    [rename] = fields("rename")
    assert rename["old_name"] == "alice" and rename["name"] == "alice2" and rename["address"] == "127.0.0.1"
    assert [f["name"] for f in fields("logout")] == ["alice2"]


async def test_a_topic_set_is_a_moderation_line_and_in_the_audit(
    start_server, tmp_path: Path, keys: dict[str, asyncssh.SSHKey], caplog: pytest.LogCaptureFixture
) -> None:
    """An operator may set the topic of any room, a room's creator that of
    theirs: either way it is the room's management, logged (and kept in
    /audit) as a kick from a room is."""
    boss_key = keys["carol"]
    server = await start_server(admin_keys=str(admin_keys_file(tmp_path, boss_key)), shutdown_grace=0.5)
    caplog.set_level(logging.INFO, "sshchat")
    boss = await server.connect("boss", key=boss_key)
    boss.line("/topic welcome \x1b[2J all")
    await boss.wait_for("boss set the topic: welcome")
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "moderation"]
    fields = line.fields  # type: ignore[attr-defined]
    assert fields["action"] == "topic" and fields["actor"] == "boss" and fields["room"] == "#lobby"
    assert fields["target"] == "#lobby" and "\x1b" not in fields["detail"] and fields["detail"].startswith("welcome")
    boss.line("/audit")
    await boss.wait_for("boss topic #lobby: welcome")


def codes(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.fields["code"] for r in caplog.records if getattr(r, "event", None) == name]  # type: ignore[attr-defined]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers share a port with SO_REUSEPORT")
def test_with_workers_every_line_of_the_parent_and_the_workers_is_json(
    tmp_path: Path, redis_server: Any, pg_url: str
) -> None:
    cluster = ("--bus", redis_server.url, "--db", pg_url)
    server = ServerProcess(tmp_path, "--workers", "2", *cluster, "--log-format", "json")
    try:

        async def use() -> None:
            alice = await connect(server.port, "alice")
            await eventually(lambda: bool(events(server.log, "login", name="alice")), timeout=10)
            await alice.close()

        asyncio.run(use())
    finally:
        assert server.stop() == 0, "".join(server.log)
    started = events(server.log, "worker_started")
    assert sorted(e["index"] for e in started) == [1, 2] and not any("worker" in e for e in started)  # the parent's
    [login] = events(server.log, "login", name="alice")
    assert login["worker"] in (1, 2)
    assert {e.get("worker") for e in events(server.log, "stopped")} == {None, 1, 2}  # the parent's, each worker's


def test_a_throttled_line_says_how_many_were_left_out() -> None:
    now = [0.0]
    throttle = Throttle(window=60, size=2, clock=lambda: now[0])
    a, b, c = (("10.0.0.1", "rate"), ("10.0.0.2", "rate"), ("10.0.0.3", "blocked"))
    assert throttle.admit(a) == 0
    assert [throttle.admit(a) for _ in range(3)] == [None] * 3
    now[0] = 30.0
    assert throttle.admit(b) == 0  # another key has its own line
    assert throttle.admit(b) is None
    now[0] = 60.0
    assert throttle.admit(a) == 3  # a minute on: logged again, saying how many were not
    assert throttle.admit(c) == 0  # only the last two keys are kept: b, the oldest, is forgotten...
    now[0] = 61.0
    assert throttle.admit(b) == 0  # ...so its line comes within its minute (the memory stays bounded)
