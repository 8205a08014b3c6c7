"""The configuration file: where it is found, defaults, validation and `config show` output."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from courriel import config
from courriel.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "courriel.toml"
    p.write_text(text)
    return p


def test_missing_default_file_means_all_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COURRIEL_DATA", str(tmp_path / "data"))
    cfg = config.load()
    assert cfg.path == tmp_path / "data" / "courriel.toml"
    assert cfg.data_dir == (tmp_path / "data").resolve()
    assert cfg.store.url == ""
    assert cfg.auth.cache_seconds == 60.0
    assert [lc.name for lc in cfg.listeners] == list(config.LISTENERS)
    assert cfg.listener("smtp").standard_port == 25
    assert cfg.listener("imaps").implicit_tls
    assert not cfg.listener("submission").implicit_tls


def test_without_env_the_file_is_under_var(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("COURRIEL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config.locate() == tmp_path / "var" / "courriel.toml"


def test_explicit_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        config.load(tmp_path / "nope.toml")


def test_the_written_default_parses_to_the_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, config.DEFAULT_TOML)
    cfg = config.load(p)
    assert cfg.limits == config.LimitsConfig()
    assert cfg.data_dir == tmp_path.resolve()


def test_values_are_read_and_paths_resolved(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        'data_dir = "state"\nhostname = "mx.example.org"\n'
        "[auth]\ncache_seconds = 0\n[limits]\nmax_connections_per_ip = 5\n"
        '[listeners.imap]\nenabled = false\n[listeners.smtp]\naddress = "127.0.0.1"\nport = 2525\n',
    )
    cfg = config.load(p)
    assert cfg.data_dir == (tmp_path / "state").resolve()
    assert cfg.hostname == "mx.example.org"
    assert cfg.auth.cache_seconds == 0.0
    assert cfg.limits.max_connections_per_ip == 5
    assert not cfg.listener("imap").enabled
    assert (cfg.listener("smtp").address, cfg.listener("smtp").port) == ("127.0.0.1", 2525)
    assert cfg.resolve("blobs") == cfg.data_dir / "blobs"
    assert cfg.resolve("/abs/x") == Path("/abs/x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[store\n", "not valid TOML"),
        ("colour = 1\n", "colour: unknown setting"),
        ("[limits]\nmax_connections = 'many'\n", r"\[limits\] max_connections: expected int"),
        ("[limits]\nmax_connections = -1\n", "must not be negative"),
        ("[log]\nlevel = 'loud'\n", r"\[log\] level: must be one of"),
        ("[auth]\nnope = 1\n", r"\[auth\] nope: unknown setting"),
        ("[listeners.smtps]\nport = 1\n", "unknown listener"),
        ("[listeners.smtp]\nport = 70000\n", "must be 0..65535"),
        ("[listeners.smtp]\nenabled = 'yes'\n", "expected bool"),
        ("[tls]\ncert = 'a.pem'\n", "set both cert and key"),
        ("store = 3\n", r"\[store\] must be a table"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        config.load(write(tmp_path, text))
    assert "\n" not in str(e.value)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    # A directory where the file should be cannot be read, even by root.
    p = tmp_path / "courriel.toml"
    p.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(p)


def test_show_is_valid_toml_that_loads_back_the_same(tmp_path: Path) -> None:
    p = write(tmp_path, '[log]\nformat = "json"\n[listeners.pop3]\nenabled = false\n')
    cfg = config.load(p)
    shown = config.to_toml(cfg)
    parsed = tomllib.loads(shown)
    assert parsed["log"]["format"] == "json"
    assert parsed["listeners"]["pop3"]["enabled"] is False
    again = config.load(write(tmp_path, shown))
    assert again.log == cfg.log
    assert again.listeners == cfg.listeners
    assert again.data_dir == cfg.data_dir


def test_dns_and_relay_blocks(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        '[dns]\nnameservers = ["127.0.0.1:5353", "::1", "[::1]:53"]\n'
        '[relay]\nsmarthost = "smtp.example.net:587"\nsmarthost_user = "me"\n'
        'smarthost_password_file = "pw"\nsmarthost_tls = "tls"\n',
    )
    cfg = config.load(p)
    assert cfg.dns.nameservers == ("127.0.0.1:5353", "::1", "[::1]:53")
    assert cfg.relay.smarthost_tls == "tls" and cfg.relay.max_connections == 100
    again = config.load(write(tmp_path, config.to_toml(cfg)))
    assert again.dns == cfg.dns and again.relay == cfg.relay


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[dns]\nnameservers = "127.0.0.1"\n', "list of strings"),
        ('[dns]\nnameservers = ["dns.example.org"]\n', "not an IP address"),
        ('[dns]\nnameservers = ["127.0.0.1:99999"]\n', "not an IP address"),
        ('[relay]\nsmarthost = "smtp.example.net"\n', "not host:port"),
        ('[relay]\nsmarthost_tls = "maybe"\n', "must be one of"),
        ('[relay]\nsmarthost = "a.example:25"\nsmarthost_user = "me"\n', "password_file"),
    ],
)
def test_bad_dns_and_relay_values(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        config.load(write(tmp_path, text))
