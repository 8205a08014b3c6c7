"""The ``[junk]`` section: defaults, and bad values named with their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.config import ConfigError, JunkConfig, load


def test_defaults_score_and_learn_but_refuse_nothing(tmp_path: Path) -> None:
    (tmp_path / "courriel.toml").write_text("")
    junk = load(tmp_path / "courriel.toml").junk
    assert junk == JunkConfig()
    assert (junk.scoring, junk.learn, junk.threshold) == (True, True, 5.0)
    assert not (junk.dnsbl_zones or junk.fcrdns or junk.helo_checks or junk.greylist)
    assert junk.greeting_delay_seconds == 0.0 and junk.rspamd_url == ""


def test_settings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "courriel.toml"
    path.write_text(
        '[junk]\ndnsbl_zones = ["zen.spamhaus.org"]\ngreylist = true\nthreshold = 6.5\n'
        'greeting_delay_seconds = 3\nrspamd_url = "http://127.0.0.1:11333"\n'
    )
    junk = load(path).junk
    assert junk.dnsbl_zones == ("zen.spamhaus.org",)
    assert (junk.greylist, junk.threshold, junk.greeting_delay_seconds) == (True, 6.5, 3.0)
    assert junk.rspamd_url == "http://127.0.0.1:11333"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("threshold = 0", "[junk] threshold: must be more than 0"),
        ('dnsbl_zones = ["localhost"]', "[junk] dnsbl_zones: 'localhost' is not a DNS zone name"),
        ('rspamd_url = "127.0.0.1:11333"', "[junk] rspamd_url: '127.0.0.1:11333' is not an http"),
        ("greylist = 1", "[junk] greylist: expected bool"),
        ("bayes = true", "[junk] bayes: unknown setting"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, line: str, error: str) -> None:
    path = tmp_path / "courriel.toml"
    path.write_text(f"[junk]\n{line}\n")
    with pytest.raises(ConfigError) as e:
        load(path)
    assert str(e.value).startswith(error)
