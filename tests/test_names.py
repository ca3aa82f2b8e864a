"""The one name rule."""

from __future__ import annotations

import pytest

from sshchat.chat.names import InvalidName, check_name, name_key


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
