"""The one name rule."""

from __future__ import annotations

import pytest

from sshchat.chat.names import InvalidName, check_name, name_key
from sshchat.chat.registry import NameRegistry
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock


@pytest.mark.parametrize("name", ["a", "alice", "Bob_2", "x-y", "A" + "b" * 15])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "1abc", "_x", "-x", "bad name", "bad!", "a" * 17, "ålice", "alice\n", "a\x1b[2J"]
)
def test_invalid_names_say_the_rule(name: str) -> None:
    with pytest.raises(InvalidName) as e:
        check_name(name)
    assert "use 1-16 letters, digits, _ or -, starting with a letter" in str(e.value)
    assert "\x1b" not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["server", "System", "ADMIN", "root", "sshchat"])
def test_reserved_names(name: str) -> None:
    with pytest.raises(InvalidName, match="reserved"):
        check_name(name)


def test_names_compare_ignoring_case() -> None:
    assert name_key("Alice") == name_key("aLICE")


def test_the_registry_forgets_addresses_and_keys_it_no_longer_needs() -> None:
    """Memory that throwaway keys and addresses would fill: an address's
    registrations are forgotten an hour on, even if it never comes back, and
    a key with no names left is not kept."""
    clock = Clock()
    names = NameRegistry({}, MemoryStore(), clock, per_key=3, per_address=5)
    for n in range(100):
        assert names.claim(f"name{n}", f"SHA256:k{n}", address=f"198.51.{n}.1")
    for n in range(100):
        names.release(f"name{n}")
    assert names.names_of("SHA256:k1") == []
    clock.now += NameRegistry.WINDOW + 1
    assert names.claim("late", "SHA256:late", address="203.0.113.1")
    assert len(names._registered_at) == 1  # the late one's only
    assert len(names._held) == 1
