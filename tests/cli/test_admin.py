"""The operations of courriel.admin used directly: sizes, the demo account, the default file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from courriel import admin, config
from courriel.accounts.passwords import PasswordHasher
from courriel.admin import AdminError, InputError
from courriel.store.open import open_store

CHEAP = PasswordHasher.for_tests()


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("1K", 1024),
        ("500M", 500 * 2**20),
        ("2G", 2 * 2**30),
        ("2g", 2 * 2**30),
        ("2GB", 2 * 2**30),
        ("2GiB", 2 * 2**30),
        ("1.5G", 3 * 2**29),
        (" 3 T ", 3 * 2**40),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert admin.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "2X", "-1G", "0", "0.0M", "1e9", "2 G B", "2000000000T"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InputError):
        admin.parse_size(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0"),
        (1023, "1023"),
        (1024, "1K"),
        (1536, "1.5K"),
        (2 * 2**30, "2G"),
        (15 * 2**20, "15M"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert admin.format_size(size) == text


@pytest.mark.parametrize(
    ("hostname", "domain"),
    [
        ("mail.example.org", "mail.example.org"),
        ("Mail.Example.ORG", "mail.example.org"),
        ("localhost", "example.test"),
        ("box", "example.test"),
        ("localhost.localdomain", "example.test"),
        ("printer.local", "example.test"),
        ("4.3.2.1.in-addr.arpa", "example.test"),
        ("192.0.2.7", "example.test"),
        ("under_score.example", "example.test"),
    ],
)
def test_demo_domain(hostname: str, domain: str) -> None:
    assert admin.demo_domain(hostname) == domain


def _cfg(tmp_path: Path, hostname: str) -> config.Config:
    p = tmp_path / "courriel.toml"
    p.write_text(f'hostname = "{hostname}"\n')
    return config.load(p)


async def test_first_run_makes_a_demo_account_once(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "mx.example.org")
    store = await open_store(cfg)
    try:
        created = await admin.first_run(cfg, store, CHEAP)
        assert created is not None
        assert created.address == "demo@mx.example.org"
        assert created.password not in repr(created)
        user = await store.get_user("demo@mx.example.org")
        assert user is not None
        assert CHEAP.verify(user.password_hash, created.password)
        names = {m.name for m in await store.list_mailboxes(user.id)}
        assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} <= names
        assert await admin.first_run(cfg, store, CHEAP) is None
        assert len(await store.list_users()) == 1
    finally:
        await store.close()


async def test_first_run_leaves_a_store_with_domains_alone(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "localhost")
    store = await open_store(cfg)
    try:
        await admin.add_domain(store, "example.org")
        assert await admin.first_run(cfg, store, CHEAP) is None
        assert await store.list_users() == []
    finally:
        await store.close()


async def test_first_run_passwords_differ(tmp_path: Path) -> None:
    passwords = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        cfg = _cfg(tmp_path / name, "localhost")
        store = await open_store(cfg)
        try:
            created = await admin.first_run(cfg, store, CHEAP)
        finally:
            await store.close()
        assert created is not None
        assert created.address == "demo@example.test"
        passwords.append(created.password)
    assert passwords[0] != passwords[1]
    assert all(len(p) >= 20 for p in passwords)


async def test_remove_domain_in_use_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "localhost")
    store = await open_store(cfg)
    try:
        await admin.add_domain(store, "example.org")
        await admin.add_user(store, CHEAP, "a@example.org", "pw-123456")
        with pytest.raises(AdminError, match="still has 1 user; remove them first"):
            await admin.remove_domain(store, "example.org")
        assert await store.get_domain("example.org") is not None
    finally:
        await store.close()


def test_default_config_is_written_once_with_private_modes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COURRIEL_DATA", str(tmp_path / "var" / "data"))
    cfg = config.load()
    assert admin.write_default_config(cfg)
    assert cfg.path.read_text() == config.DEFAULT_TOML
    assert stat.S_IMODE(cfg.data_dir.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(cfg.path.stat().st_mode) & 0o077 == 0
    cfg.path.write_text('hostname = "mine.example"\n')
    assert not admin.write_default_config(cfg)
    assert cfg.path.read_text() == 'hostname = "mine.example"\n'
    assert [p.name for p in cfg.data_dir.iterdir()] == ["courriel.toml"]
