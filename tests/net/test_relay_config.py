"""``[dns]`` and ``[relay]`` settings turned into a transport."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel import config
from courriel.config import ConfigError
from courriel.net.smtp_client import from_config


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "courriel.toml"
    path.write_text('hostname = "mail.example.org"\n' + text)
    return config.load(path)


async def test_smarthost_with_login(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\nignored\n")
    cfg = load(
        tmp_path,
        '[dns]\nnameservers = ["127.0.0.1:5353"]\n[relay]\nsmarthost = "smtp.example.net:465"\n'
        'smarthost_tls = "tls"\nsmarthost_user = "me@example.net"\nsmarthost_password_file = "pw"\n'
        "timeout_scale = 0.5\nmax_connections_per_destination = 3\n"
        "max_messages_per_minute_per_destination = 120\n",
    )
    transport = from_config(cfg)
    s = transport.settings
    assert s.helo_name == "mail.example.org"
    assert s.smarthost is not None and s.smarthost.login is not None
    assert (s.smarthost.host, s.smarthost.port, s.smarthost.tls) == ("smtp.example.net", 465, "tls")
    assert s.smarthost.login.password == "s3cret"
    assert s.timeouts.greeting == 150.0 and s.max_per_destination == 3
    assert s.max_messages_per_minute == 120
    await transport.close()


def test_unreadable_password_file(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[relay]\nsmarthost = "smtp.example.net:587"\nsmarthost_user = "me"\n'
        'smarthost_password_file = "missing"\n',
    )
    with pytest.raises(ConfigError, match="smarthost_password_file"):
        from_config(cfg)
