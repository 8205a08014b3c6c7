"""``[mtasts]``: the policy served is the one ``courriel dns`` announces, for any settings."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel import config
from courriel.dnsrecords import records_for
from courriel.mail.mtasts import Mode, parse_policy
from courriel.testing.server import MailServer, start_server
from courriel.testing.web import fetch

DOMAIN = "example.org"
SETTINGS = """[mtasts]
mode = "enforce"
mx = ["mx1.example.org", "*.example.net"]
max_age = 86400
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    s = start_server(tmp_path_factory.mktemp("mtasts"), extra_config=SETTINGS)
    try:
        s.add_user(f"alice@{DOMAIN}", "correct horse")
        yield s
    finally:
        s.stop()


def test_the_served_policy_follows_the_settings_and_the_published_id(server: MailServer) -> None:
    status, _, body = fetch(server, "GET", "/.well-known/mta-sts.txt", host=f"mta-sts.{DOMAIN}")
    assert status == 200
    policy = parse_policy(body.decode())
    assert policy.mode is Mode.ENFORCE
    assert policy.mx == ("mx1.example.org", "*.example.net")
    assert policy.max_age == 86400
    cfg = server.cfg
    records = records_for(
        DOMAIN, cfg.hostname, [], cfg.listeners, self_signed=True, mtasts=cfg.mtasts
    )
    sts = next(r for r in records if r.name == f"_mta-sts.{DOMAIN}")
    assert sts.value == f"v=STSv1; id={hashlib.sha256(body).hexdigest()[:20]}"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('mode = "strict"', "[mtasts] mode: must be one of"),
        ("max_age = 0", "[mtasts] max_age: must be 1..31557600"),
        ("max_age = 40000000", "[mtasts] max_age: must be 1..31557600"),
        ('mx = "mail.example.org"', "[mtasts] mx: expected a list of strings"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, block: str, message: str) -> None:
    path = tmp_path / "courriel.toml"
    path.write_text(f"[mtasts]\n{block}\n")
    with pytest.raises(config.ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        config.load(path)
