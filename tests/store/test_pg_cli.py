"""``courriel db``: migrate, export from SQLite, import into PostgreSQL, copy; the real command."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from courriel import cli, config
from courriel.store.base import FlagOp, NewMessage, Store
from courriel.store.queue import NewEntry, NewRecipient
from courriel.testing.fill import on_store

T = TypeVar("T")

pytestmark = pytest.mark.postgres


def setup_dirs(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A SQLite installation (through COURRIEL_DATA) and a PostgreSQL configuration file."""
    monkeypatch.setenv("COURRIEL_DATA", str(tmp_path / "old"))
    monkeypatch.setenv(cli.CHEAP_HASH_ENV, "1")
    pg_conf = tmp_path / "new" / "courriel.toml"
    pg_conf.parent.mkdir()
    pg_conf.write_text(f'[store]\nurl = "{pg_url}"\n', encoding="utf-8")
    return tmp_path / "old", pg_conf


def in_store(path: Path | None, fn: Callable[[Store], Awaitable[T]]) -> T:
    return on_store(config.load(path), fn)


async def fill(store: Store) -> None:
    user = await store.get_user("ann@example.org")
    assert user is not None
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    when = datetime(2023, 3, 4, 5, 6, 7, tzinfo=UTC)
    await store.append(
        [(inbox.id, NewMessage(f"Subject: {n}\r\n\r\nx".encode(), when)) for n in range(5)]
    )
    await store.store_flags(inbox.id, [2, 4], FlagOp.ADD, frozenset({"\\Answered", "$Done"}))
    await store.expunge(inbox.id, [3])
    # Accepted for another server and not relayed yet: it moves with the rest.
    rcpt = NewRecipient("zoe@example.net", "example.net")
    away = NewEntry("Q7", "ann@example.org", (rcpt,), b"Subject: away\r\n\r\nx\r\n")
    await store.queue.enqueue(away, 1_780_000_000.0)


async def view(store: Store) -> object:
    user = await store.get_user("ann@example.org")
    assert user is not None
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    infos = await store.list_messages(inbox.id)
    bodies = [await store.read_message(inbox.id, m.uid) for m in infos]
    queued = [await store.queue.get(e.id) for e in await store.queue.list_entries()]
    return user, inbox, infos, bodies, await store.expunged_since(inbox.id, 0), queued


def test_export_then_import_and_copy(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _old, pg_conf = setup_dirs(tmp_path, pg_url, monkeypatch)
    assert cli.main(["domain", "add", "example.org"]) == 0
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"a long enough password\n")))
    assert cli.main(["user", "add", "ann@example.org", "--password-stdin"]) == 0
    in_store(None, fill)
    before = in_store(None, view)
    capsys.readouterr()

    assert cli.main(["db", "migrate"]) == 0
    assert capsys.readouterr().out == "schema up to date\n"
    export = tmp_path / "all.jsonl"
    assert cli.main(["db", "export", str(export)]) == 0
    out = capsys.readouterr().out
    assert "4 messages" in out and "1 queue_messages, 1 queue_recipients" in out
    assert cli.main(["--config", str(pg_conf), "db", "migrate"]) == 0
    assert cli.main(["--config", str(pg_conf), "db", "import", str(export)]) == 0
    assert "4 messages" in capsys.readouterr().out
    assert in_store(pg_conf, view) == before
    # A second import would duplicate everything: refused, nothing changed.
    assert cli.main(["--config", str(pg_conf), "db", "import", str(export)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert in_store(pg_conf, view) == before
    # And back: copy PostgreSQL into a new SQLite database beside the PostgreSQL configuration.
    back = pg_conf.with_name("sqlite.toml")
    back.write_text("", encoding="utf-8")
    assert cli.main(["--config", str(pg_conf), "db", "copy", "--to", "sqlite:"]) == 0
    assert (pg_conf.parent / "courriel.db").exists()
    assert in_store(back, view) == before
