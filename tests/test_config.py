"""Settings: defaults < TOML file < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshchat.config import Config, ConfigError, load


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
