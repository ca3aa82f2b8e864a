"""deploy/ (issue 16): the systemd unit, the container file and the compose
file start sshchat the way the command line and the settings accept.

No container can be built or run here (no daemon), and systemd does not
run the tests: what is checked is what a mistake in these files would
break first. Every ``sshchat`` command line in them is parsed by the real
parser and its settings loaded; the paths the server writes are where the
hardening lets it write; the unit passes ``systemd-analyze verify`` where
that exists; the container's health check is run against a real server;
the compose file's one-time key generation is run twice.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sshchat.cli import _parser
from sshchat.config import Config, load
from sshchat.store import is_postgres_url
from tests.support.server import Server

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def settings(argv: list[str], env: dict[str, str] | None = None) -> Config:
    """The settings ``sshchat ARGV`` would run with (the parser must accept it)."""
    args = _parser().parse_args(argv)
    assert args.command == "serve"
    flags = {name: getattr(args, name) for name in ("host", "port", "host_key", "db", "bus", "admin_keys")}
    return load(args.config, env or {}, flags)


# ------------------------------------------------------------------ systemd


def unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "sshchat.service").read_text().splitlines():
        if line.strip() and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_unit_runs_serve_as_its_own_user_writing_only_its_state_folder() -> None:
    u = unit()
    binary, *argv = shlex.split(u["ExecStart"][0])
    assert binary.endswith("/sshchat")
    config = settings(argv)
    state = "/var/lib/" + u["StateDirectory"][0]
    # ProtectSystem=strict makes everything else read-only: the key and the database must be in there.
    assert Path(config.host_key).parent == Path(state) and Path(config.db).parent == Path(state)
    assert u["WorkingDirectory"] == [state]
    assert u["User"] == ["sshchat"] and u["Restart"] == ["on-failure"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": ""}.items():
        assert u[key] == [value], key
    assert config.port > 1024  # so no capability is needed


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """Every directive known and well formed (verify only warns: its output must be empty)."""
    sshchat = Path(sys.executable).parent / "sshchat"
    text = (DEPLOY / "sshchat.service").read_text().replace("/opt/sshchat/bin/sshchat", str(sshchat))
    (tmp_path / "sshchat.service").write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "sshchat.service")], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "sshchat.service" in line]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr


# ---------------------------------------------------------------- container


def containerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Containerfile").read_text())
    steps = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            steps.append((word.upper(), rest.strip()))
    return steps


def test_the_container_runs_serve_as_a_user_with_its_state_on_the_volume() -> None:
    import json

    steps = containerfile()
    first = dict(steps)
    # A tag naming the Debian release (or a digest): a rebuild must not switch distributions unannounced.
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", first["FROM"])
    users = [arg for word, arg in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    env = dict(re.findall(r"(\w+)=(\S+)", first["ENV"]))
    config = settings([*json.loads(first["ENTRYPOINT"])[1:], *json.loads(first["CMD"])], env)
    volumes = json.loads(first["VOLUME"])
    assert Path(config.host_key).parent == Path(volumes[0]) and Path(config.db).parent == Path(volumes[0])
    assert first["EXPOSE"] == str(config.port)
    assert json.loads(first["ENTRYPOINT"]) == ["sshchat"]
    # The build context is sshchat's folder: a developer's venv, databases, host key and compose's
    # passwords stay out of the image (a file COPY took is in a layer, whatever a later rm does).
    for secret in (".venv/bin/python", ".git/config", "sshchat.db", "data/sshchat.db", "data/sshchat.db-wal",
                   "keys/host", "deploy/.env", ".env", "rust.jsonl", "backups/chat.dump"):
        assert _docker_ignores(secret), secret
    for needed in ("sshchat/app.py", "sshchat/term/keys.py", "README.md", "pyproject.toml", "LICENSE"):
        assert not _docker_ignores(needed), needed  # what pip install needs


def _docker_ignores(path: str) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context, by
    Docker's rules: "*" within one folder, "**" across folders, a pattern
    matching a folder leaves out all it holds, "!" takes a path back."""
    lines = (DEPLOY.parent / ".dockerignore").read_text().splitlines()
    ignored = False
    for line in (x.strip() for x in lines):
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = re.escape(line.lstrip("!").strip("/"))
        pattern = pattern.replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        parts = path.split("/")
        if any(re.fullmatch(pattern, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not keep
    return ignored


def _health_check(port: int) -> list[str]:
    import json

    check = dict(containerfile())["HEALTHCHECK"]
    argv = json.loads(check[check.index("CMD") + 3 :])
    argv = [a.replace("2222", str(port)) for a in argv]
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


async def test_the_health_check_passes_on_a_running_server_and_fails_without_one(server: Server) -> None:
    import asyncio

    async def check(port: int) -> int:
        proc = await asyncio.create_subprocess_exec(
            *_health_check(port), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        return await asyncio.wait_for(proc.wait(), 20)

    for _ in range(3):
        assert await check(server.port) == 0
    person = await server.connect("alice")  # the checks cost the address nothing
    assert "Welcome" in person.text
    await server.app.stop()
    assert await check(server.port) != 0


# ------------------------------------------------------------------ compose


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


PASSWORDS = {"SSHCHAT_PG_PASSWORD": "pg0secret", "SSHCHAT_REDIS_PASSWORD": "redis0secret"}


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?error}, with only the two passwords set."""
    value = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: PASSWORDS[m.group(1)], value)
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_compose_refuses_to_start_without_the_passwords() -> None:
    """A default password would be one anyone can read in this file (and
    PostgreSQL keeps the password of its first start, so one set later is
    not the one in force): compose must stop when a password is not given."""
    text = (DEPLOY / "compose.yaml").read_text()
    uses = re.findall(r"\$\{(\w*PASSWORD\w*)([^}]*)\}", text)
    assert {name for name, _ in uses} == set(PASSWORDS)
    assert all(rest.startswith(":?") for _, rest in uses), uses


def test_compose_runs_two_nodes_on_postgres_and_redis_with_one_host_key() -> None:
    c = compose()
    services = c["services"]
    nodes = {name: s for name, s in services.items() if name.startswith("node")}
    assert len(nodes) == 2
    keys = set()
    for name, node in nodes.items():
        env = {k: _interpolate(str(v)) for k, v in node["environment"].items()}
        config = settings(node["command"], env)
        assert is_postgres_url(config.db) and config.db.startswith("postgresql://chat@postgres:5432/")
        assert config.bus.startswith("redis://") and "@redis:6379/" in config.bus
        assert ":" not in config.db.split("://")[1].split("@")[0]  # the password comes from PGPASSWORD
        assert env["PGPASSWORD"] == _interpolate(services["postgres"]["environment"]["POSTGRES_PASSWORD"])
        mounts = {target: source for source, target in (v.split(":") for v in node["volumes"])}
        keys.add((mounts[str(Path(config.host_key).parent)], config.host_key))
        assert node["depends_on"] == {
            "keygen": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, name
    assert len(keys) == 1  # one key file on one volume: clients see one host
    (volume, key_path), = keys
    assert volume in c["volumes"]
    keygen = services["keygen"]
    assert f"{volume}:{Path(key_path).parent}" in keygen["volumes"] and key_path in keygen["entrypoint"][-1]
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    published = [p.split(":")[0] for n in nodes.values() for p in n["ports"]]
    assert len(set(published)) == 2
    assert config.bus == f"redis://:{PASSWORDS['SSHCHAT_REDIS_PASSWORD']}@redis:6379/0"
    assert not {"ports", "network_mode"} & (set(services["postgres"]) | set(services["redis"]))  # not published


def test_compose_makes_the_host_key_once(tmp_path: Path) -> None:
    """The keygen service's command, run twice: the second start keeps the key."""
    script = compose()["services"]["keygen"]["entrypoint"]
    assert script[:2] == ["sh", "-c"]
    command = script[2].replace("/keys/", f"{tmp_path}/")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", command], check=True, env=env, capture_output=True, timeout=60)
    first = (tmp_path / "host").read_bytes()
    subprocess.run(["sh", "-c", command], check=True, env=env, capture_output=True, timeout=60)
    assert (tmp_path / "host").read_bytes() == first
