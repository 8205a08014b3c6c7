"""CATENATE's assembly (RFC 4469 §5) against a real store: the APPENDLIMIT bound stops the
reading, and a relative URL needs a selected mailbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.session.imap.catenate import CatenateRefused, assemble
from courriel.session.imap.state import Authenticated
from courriel.store.base import Store
from courriel.store.sqlite import open_sqlite
from courriel.testing.fill import add_user, deliver_to_inbox

RAW = b"Subject: stored\r\n\r\n" + b"x" * 100 + b"\r\n"


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[Authenticated]:
    store: Store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        user = await add_user(store, "ann@example.org", "secret")
        await deliver_to_inbox(store, user, RAW)
        yield Authenticated(store, 10**6, user=user)
    finally:
        await store.close()


async def test_parts_are_joined_in_order(state: Authenticated) -> None:
    url = "imap://ann%40example.org@mail.example.org/INBOX/;UID=1/;SECTION=HEADER"
    joined = await assemble(state, [b"X-New: 1\r\n", url, b"\r\nbody\r\n"], 1000)
    assert joined == b"X-New: 1\r\nSubject: stored\r\n\r\n\r\nbody\r\n"


async def test_past_the_limit_is_toobig(state: Authenticated) -> None:
    whole = "/INBOX/;UID=1"
    assert len(await assemble(state, [whole], len(RAW))) == len(RAW)
    with pytest.raises(CatenateRefused) as refused:
        await assemble(state, [b"a", whole], len(RAW))  # RFC 4469 §5: one octet too many
    assert refused.value.code == b"TOOBIG"


async def test_a_relative_url_needs_a_selected_mailbox(state: Authenticated) -> None:
    with pytest.raises(CatenateRefused) as refused:
        await assemble(state, [";UID=1"], 1000)
    assert refused.value.code == b"BADURL ;UID=1"
    assert "selected mailbox" in refused.value.text
