"""What the server does about DKIM keys when it starts: a domain made before courriel signed
gets keys, and keys whose grace period is over are retired; the port 25 checks exist only
when ``[mailauth] check_inbound`` and the smtp listener say so."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import pytest

from courriel import admin_dkim, config
from courriel.config import Config, ConfigError, MailAuthConfig
from courriel.mail.auth.inbound import MailAuth
from courriel.store.base import DkimKeyState
from courriel.store.open import open_store
from courriel.testing.transcript import make_test_config, running_server


async def test_start_makes_missing_keys_and_retires_old_ones(tmp_path: Path) -> None:
    cfg = make_test_config(tmp_path / "data", tmp_path / "tls", ["smtp"])
    store = await open_store(cfg)
    try:
        await store.add_domain("old.test")  # as before keys existed: none made
        await store.add_domain("rotated.test")
        first = await admin_dkim.create_keys(store, "rotated.test")
        await admin_dkim.rotate(store, "rotated.test", grace=timedelta(0))
        await admin_dkim.activate_pending(store, "rotated.test")
        assert await store.dkim_keys("old.test") == []
        before = {k.selector: k.state for k in await store.dkim_keys("rotated.test")}
        assert {before[k.selector] for k in first} == {DkimKeyState.RETIRING}
    finally:
        await store.close()
    async with running_server(cfg) as running:
        old = await running.app.store.dkim_keys("old.test")
        rotated = await running.app.store.dkim_keys("rotated.test")
    assert sorted(k.algorithm for k in old) == ["ed25519", "rsa"]
    assert all(k.state is DkimKeyState.ACTIVE for k in old)
    states = {k.selector: k.state for k in rotated}
    assert {states[k.selector] for k in first} == {DkimKeyState.RETIRED}
    assert list(states.values()).count(DkimKeyState.ACTIVE) == 2


def _with(cfg: Config, *, check: bool) -> Config:
    return dataclasses.replace(cfg, mailauth=dataclasses.replace(cfg.mailauth, check_inbound=check))


async def test_checks_only_when_configured_and_port_25_listens(tmp_path: Path) -> None:
    cfg = make_test_config(tmp_path / "data", tmp_path / "tls", ["smtp", "submission"])
    async with running_server(_with(cfg, check=True)) as running:
        assert isinstance(running.app.mailauth, MailAuth)
        assert running.app.mailauth.hostname == cfg.hostname
    async with running_server(_with(cfg, check=False)) as running:
        assert running.app.mailauth is None
    no_mx = make_test_config(tmp_path / "data2", tmp_path / "tls", ["submission"])
    async with running_server(_with(no_mx, check=True)) as running:
        assert running.app.mailauth is None


def test_the_mailauth_block_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "courriel.toml"
    path.write_text("[mailauth]\ncheck_inbound = false\nquarantine_to_junk = false\n")
    cfg = config.load(path)
    assert cfg.mailauth == MailAuthConfig(check_inbound=False, quarantine_to_junk=False)
    path.write_text('[mailauth]\nreject_on_dmarc_reject = "yes"\n')
    with pytest.raises(ConfigError, match=r"\[mailauth\] reject_on_dmarc_reject"):
        config.load(path)
    # The commented defaults of the file written on first run are the defaults.
    block = config.DEFAULT_TOML.split("[mailauth]\n", 1)[1].split("\n\n", 1)[0]
    settings = re.findall(r"^# (\w+ = \S+)", block, re.MULTILINE)
    assert len(settings) == len(dataclasses.fields(MailAuthConfig))
    path.write_text("[mailauth]\n" + "\n".join(settings) + "\n")
    assert config.load(path).mailauth == MailAuthConfig()
