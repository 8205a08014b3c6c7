"""`courriel config show`, `version`, the --config option, and what bad configuration or a bad
command line give: one line on stderr and the documented status."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import courriel as package


def test_config_show_prints_the_effective_settings(courriel, data: Path) -> None:
    data.mkdir()
    (data / "courriel.toml").write_text(
        'hostname = "mx.example.org"\n[limits]\nmax_connections = 7\n'
        "[listeners.pop3]\nenabled = false\n"
    )
    r = courriel("config", "show")
    assert r.status == 0, r.err
    shown = tomllib.loads(r.out)
    assert shown["hostname"] == "mx.example.org"
    assert shown["data_dir"] == str(data.resolve())
    assert shown["limits"]["max_connections"] == 7
    assert shown["limits"]["max_connections_per_ip"] == 50  # a default, shown too
    assert shown["listeners"]["pop3"]["enabled"] is False
    assert shown["listeners"]["imaps"]["enabled"] is True


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_option_names_the_file(courriel, tmp_path: Path, where: str) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('hostname = "other.example"\n')
    argv = ["--config", str(other), "config", "show"]
    if where == "after":
        argv = ["config", "show", "--config", str(other)]
    r = courriel(*argv)
    assert r.status == 0, r.err
    assert tomllib.loads(r.out)["hostname"] == "other.example"


def test_missing_explicit_config_is_an_error(courriel, tmp_path: Path) -> None:
    r = courriel("--config", str(tmp_path / "nope.toml"), "domain", "list")
    assert r.status == 1
    assert r.error().endswith("nope.toml: no such configuration file")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[store\n", "not valid TOML"),
        ("colour = 1\n", "colour: unknown setting"),
        ("[limits]\nmax_connections = 'many'\n", "[limits] max_connections: expected int"),
        ("[log]\nlevel = 'loud'\n", "[log] level: must be one of"),
    ],
)
@pytest.mark.parametrize("command", [("config", "show"), ("domain", "list"), ("serve",)])
def test_invalid_config_is_one_line_naming_the_key(
    courriel, data: Path, text: str, expected: str, command: tuple[str, ...]
) -> None:
    data.mkdir()
    (data / "courriel.toml").write_text(text)
    r = courriel(*command)
    assert r.status == 1
    assert expected in r.error()
    assert r.out == ""


def test_unreadable_config_is_an_error(courriel, data: Path) -> None:
    (data / "courriel.toml").mkdir(parents=True)  # a directory cannot be read as a file
    r = courriel("config", "show")
    assert r.status == 1
    assert "cannot read" in r.error()


def test_version(courriel) -> None:
    r = courriel("version")
    assert (r.status, r.out) == (0, f"courriel {package.__version__}\n")
    r = courriel("--version")
    assert (r.status, r.out) == (0, f"courriel {package.__version__}\n")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ((), "required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("user",), "required: ACTION"),
        (("user", "add"), "required: address"),
        (("domain", "list", "--bogus"), "unrecognized arguments: --bogus"),
    ],
)
def test_bad_command_line_is_one_line_and_status_2(courriel, argv, expected: str) -> None:
    r = courriel(*argv)
    assert r.status == 2
    assert expected in r.error()


def test_help_goes_to_stdout_and_succeeds(courriel) -> None:
    r = courriel("user", "add", "--help")
    assert r.status == 0
    assert "--password-stdin" in r.out
    assert "UNSAFE" in r.out
