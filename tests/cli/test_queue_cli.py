"""``courriel queue ...`` on an embedded store (the running-server case is in tests/queue)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from courriel.store.base import NotFound, Store
from courriel.store.queue import NewEntry, NewRecipient, QueuedMessage, RecipientState, Report

MESSAGE = b"From: alice@example.test\r\nSubject: for the queue\r\n\r\nhello\r\n"
InStore = Callable[[Callable[[Store], Awaitable[Any]]], Any]


@pytest.fixture
def queued(courriel: Callable[..., Any], in_store: InStore) -> str:
    """One entry with two recipients, as submission leaves it."""
    assert courriel("domain", "list").status == 0  # makes the data directory and the store
    entry = NewEntry(
        id="ABCDEF123456",
        sender="alice@example.test",
        recipients=(
            NewRecipient("bob@example.net", "example.net"),
            NewRecipient("carol@example.org", "example.org", ()),  # NOTIFY=NEVER
        ),
        message=MESSAGE,
        envid="env-9",
    )
    in_store(lambda s: s.queue.enqueue(entry, time.time() - 60))
    return entry.id


def get(in_store: InStore, entry_id: str) -> QueuedMessage:
    got: QueuedMessage = in_store(lambda s: s.queue.get(entry_id))
    return got


def test_list_and_show(courriel: Callable[..., Any], queued: str) -> None:
    listed = courriel("queue", "list")
    assert listed.status == 0, listed.err
    lines = listed.out.splitlines()
    assert lines[0].startswith(f"{queued}  ") and "alice@example.test" in lines[0]
    assert lines[1].strip().startswith("bob@example.net  queued, 0 attempts, next ")
    assert lines[-1] == "1 message(s), 2 recipient(s) waiting"
    shown = courriel("queue", "show", queued.lower())  # ids are not case-sensitive
    assert shown.status == 0, shown.err
    assert "sender:          alice@example.test" in shown.out
    assert "RET / ENVID:     - / env-9" in shown.out
    assert "    Subject: for the queue" in shown.out


def test_an_empty_queue_says_so(courriel: Callable[..., Any]) -> None:
    result = courriel("queue", "list")
    assert (result.status, result.out) == (0, "the queue is empty\n")


def test_hold_release_retry_and_flush(
    courriel: Callable[..., Any], queued: str, in_store: InStore
) -> None:
    result = courriel("queue", "hold", queued)
    assert result.status == 0 and "is held" in result.out
    assert get(in_store, queued).held
    assert "(held)" in courriel("queue", "list").out
    before = time.time()
    result = courriel("queue", "release", queued)
    assert result.status == 0 and not get(in_store, queued).held
    assert (get(in_store, queued).next_attempt or 0) >= before
    assert courriel("queue", "retry", queued).out == f"{queued} will be tried again now\n"
    assert courriel("queue", "flush").out == "1 message(s) will be tried again now\n"


def test_bounce_fails_every_waiting_recipient_for_the_worker_to_report(
    courriel: Callable[..., Any], queued: str, in_store: InStore
) -> None:
    result = courriel("queue", "bounce", queued)
    assert result.status == 0, result.err
    entry = get(in_store, queued)
    assert [r.state for r in entry.recipients] == [RecipientState.FAILED] * 2
    assert [r.report for r in entry.recipients] == [Report.FAILED, None]  # NEVER: no notice
    assert entry.recipients[0].reason == "returned to the sender by the postmaster"


def test_remove(courriel: Callable[..., Any], queued: str, in_store: InStore) -> None:
    result = courriel("queue", "remove", queued)
    assert result.status == 0 and "nobody was told" in result.out
    with pytest.raises(NotFound):
        get(in_store, queued)


@pytest.mark.parametrize("action", ["show", "retry", "hold", "release", "remove", "bounce"])
def test_an_unknown_id_is_one_line_and_status_1(
    courriel: Callable[..., Any], queued: str, action: str
) -> None:
    result = courriel("queue", action, "NOSUCHID")
    assert result.status == 1
    assert result.error() == "no queue entry NOSUCHID"


def test_an_action_needs_its_id(courriel: Callable[..., Any]) -> None:
    result = courriel("queue", "show")
    assert result.status == 2 and "the following arguments are required: ID" in result.error()
