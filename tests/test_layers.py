"""The layers of DESIGN.md, checked on the source: the chat core imports no
transport, terminal or storage engine, and commands reach the core only
through their Core interface."""

from __future__ import annotations

import ast
from pathlib import Path

import sshchat

PACKAGE = Path(sshchat.__file__).parent
CHAT = PACKAGE / "chat"

# What chat/ may never import: other layers (the bus's adapters too: chat/bus.py is the
# core's side of the bus), and the libraries they wrap.
_OUTSIDE_CHAT = ("sshchat.term", "sshchat.ssh", "sshchat.store", "sshchat.bus", "sshchat.workers",
                 "sshchat.config", "sshchat.app", "sshchat.cli", "sshchat.metrics",
                 "asyncssh", "sqlite3", "redis", "asyncpg", "prometheus_client")
# The hub and its parts: commands go through commands/core.py's Core instead.
_PARTS = ("sshchat.chat.hub", "sshchat.chat.pipeline", "sshchat.chat.presence", "sshchat.chat.rooms",
          "sshchat.chat.admission", "sshchat.chat.operations", "sshchat.chat.registry")


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imports(path) if any(m == f or m.startswith(f + ".") for f in forbidden))


def test_the_chat_core_imports_no_other_layer() -> None:
    modules = sorted(CHAT.rglob("*.py"))
    assert len(modules) > 10
    bad = {str(p.relative_to(PACKAGE)): offending(p, _OUTSIDE_CHAT) for p in modules}
    assert {k: v for k, v in bad.items() if v} == {}


def test_commands_reach_the_core_only_through_their_interface() -> None:
    modules = sorted((CHAT / "commands").glob("*.py"))
    assert len(modules) >= 5
    bad = {p.name: offending(p, _PARTS) for p in modules}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_import_check_sees_imports() -> None:
    """The two tests above would pass on an empty list: make sure they see."""
    assert offending(PACKAGE / "ssh" / "session.py", ("asyncssh",)) == ["asyncssh"]
    assert offending(CHAT / "hub.py", _PARTS[1:]) != []
