"""The ACME rules that need no server: when a certificate is due, the backoff, the names, the
configuration checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from courriel import config
from courriel.config import AcmeConfig, ConfigError
from courriel.store.acme import StoredCertificate
from courriel.web.acme import backoff, due

NOW = datetime.now(UTC)


def cert(days_left: float, names: tuple[str, ...] = ("mail.example.org",)) -> StoredCertificate:
    return StoredCertificate("acme", "", "", "1", NOW + timedelta(days=days_left), names)


@pytest.mark.parametrize(
    ("stored", "wanted", "reason"),
    [
        (None, ["mail.example.org"], "no certificate yet"),
        (cert(60), ["mail.example.org"], ""),
        (cert(31), ["mail.example.org"], ""),
        (cert(29), ["mail.example.org"], "the certificate expires on"),
        (cert(-1), ["mail.example.org"], "the certificate expires on"),
        (cert(60), ["mail.example.org", "mta-sts.example.org"], "does not cover mta-sts."),
        (cert(60, ("mail.example.org", "old.example.org")), ["mail.example.org"], ""),
    ],
)
def test_when_a_certificate_is_due(
    stored: StoredCertificate | None, wanted: list[str], reason: str
) -> None:
    got = due(stored, wanted, renew_days=30)
    assert (reason in got) if reason else got == ""
    assert bool(got) == bool(reason)


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(1, 600), (2, 1200), (3, 2400), (8, 76800), (9, 86400), (50, 86400)],
)
def test_the_backoff_doubles_up_to_a_day(failures: int, seconds: float) -> None:
    assert backoff(AcmeConfig(retry_seconds=600), failures) == seconds


def _load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "courriel.toml"
    path.write_text(text)
    return config.load(path)


def test_the_acme_section_is_read_and_checked(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        '[acme]\nenabled = true\nnames = ["a.example.org"]\nchallenge = "tls-alpn-01"\n',
    )
    assert cfg.acme.enabled and cfg.acme.names == ("a.example.org",)
    assert cfg.acme.challenge == "tls-alpn-01" and cfg.acme.renew_days == 30
    assert not _load(tmp_path, "").acme.enabled  # off by default: self-signed stays
    for bad, words in [
        ('challenge = "dns-01"', "[acme] challenge: must be one of"),
        ('enabled = true\ndirectory = "ftp://x"', "[acme] directory: not an http(s) URL"),
        ("check_seconds = 0", "[acme] check_seconds: must be more than 0"),
        ("renewal = 3", "[acme] renewal: unknown setting"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(words)):
            _load(tmp_path, f"[acme]\n{bad}\n")
