"""Settings: defaults < TOML file < environment < flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sshchat.chat.settings import ChatSettings
from sshchat.config import Config, ConfigError, chat_settings, load


def test_layers_in_order(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('port = 3000\nhost = "10.0.0.1"\nhistory-on-join = 5\n')
    c = load(str(f), {"SSHCHAT_PORT": "3001", "SSHCHAT_DB": "env.db"}, {"port": 3002, "db": None})
    assert (c.port, c.host, c.db, c.history_on_join) == (3002, "10.0.0.1", "env.db", 5)
    assert load(None, {}, {}) == Config()


def test_config_file_from_environment(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("port = 4000\n")
    assert load(None, {"SSHCHAT_CONFIG": str(f)}).port == 4000


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("prot = 1\n", {}, "unknown setting 'prot'"),
        ("port = 'x'\n", {}, "port must be a whole number"),
        ("port = [\n", {}, "is not valid TOML"),
        ("", {"SSHCHAT_PORT": "99999"}, "port must be between 0 and 65535"),
        ("", {"SSHCHAT_NOPE": "1"}, "unknown environment variable SSHCHAT_NOPE"),
        ("", {"SSHCHAT_LOG_LEVEL": "loud"}, "log_level must be one of"),
        ("room_reserve = 10\n", {}, "room_reserve is a share of max_rooms: from 0 to 1"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, content: str, env: dict[str, str], message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load(str(f), env)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(str(tmp_path / "nope.toml"))


def _another(value: object) -> object:
    """A value of the same type that differs from ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value + 0.5
    assert isinstance(value, str)
    return value + "-changed"


def test_every_chat_setting_comes_from_the_config_field_of_its_name() -> None:
    """Config holds the only defaults: each ChatSettings field is filled from
    it, and from its own field only (a setting renamed on one side, or wired
    to the wrong field, fails here)."""
    base = Config()
    defaults = chat_settings(base)
    for field in dataclasses.fields(ChatSettings):
        assert hasattr(base, field.name), f"Config has no setting {field.name}"
        assert getattr(defaults, field.name) == getattr(base, field.name), field.name
        changed = _another(getattr(base, field.name))
        got = chat_settings(dataclasses.replace(base, **{field.name: changed}))
        assert got == dataclasses.replace(defaults, **{field.name: changed}), field.name


def test_chat_settings_have_no_defaults_of_their_own() -> None:
    assert all(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(ChatSettings)
    )


def test_the_retired_native_setting_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An old file or environment that still sets `native` (the C packet
    writer, removed) starts the server, and the log says the value is ignored."""
    f = tmp_path / "c.toml"
    f.write_text("native = false\nport = 2300\n")
    with caplog.at_level("WARNING", logger="sshchat"):
        c = load(str(f), {"SSHCHAT_NATIVE": "true"})
    assert c.port == 2300 and not hasattr(c, "native")
    assert [r.getMessage() for r in caplog.records] == [
        f"{f}: setting 'native' is ignored: the C packet writer was removed; sshchat is pure Python "
        "(fast_path still applies)",
        "environment variable SSHCHAT_NATIVE is ignored: the C packet writer was removed; sshchat is pure Python "
        "(fast_path still applies)",
    ]
