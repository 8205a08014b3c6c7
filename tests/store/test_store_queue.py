"""The outbound queue's store contract (courriel.store.queue), on every backend."""

from __future__ import annotations

import asyncio
from typing import Protocol

import pytest

from courriel.store.base import AlreadyExists, NotFound, Store
from courriel.store.queue import (
    NewEntry,
    NewRecipient,
    RecipientState,
    RecipientUpdate,
    Report,
)


class Backend(Protocol):
    async def open(self) -> Store: ...


T0 = 1_700_000_000.0
MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\n" + bytes(range(256)) + b"\r\n"


def entry(entry_id: str = "Q1", *recipients: str, sender: str = "a@example.org") -> NewEntry:
    rcpts = recipients or ("x@example.net", "y@example.com")
    return NewEntry(
        id=entry_id,
        sender=sender,
        recipients=tuple(
            NewRecipient(
                r, r.rpartition("@")[2], ("FAILURE", "SUCCESS") if i == 0 else None, f"rfc822;{r}"
            )
            for i, r in enumerate(rcpts)
        ),
        message=MESSAGE,
        ret="HDRS",
        envid="env-1",
        smtputf8=True,
        body_type="8BITMIME",
        authenticated_as="a@example.org",
    )


def update(
    idx: int, state: RecipientState, at: float = 0.0, report: Report | None = None
) -> RecipientUpdate:
    return RecipientUpdate(idx, state, at, 451, "4.7.1", "try later", "mx [192.0.2.1]", report)


async def test_an_entry_survives_reopening_with_its_envelope(backend: Backend) -> None:
    store = await backend.open()
    try:
        assert await store.queue.enqueue(entry(), T0) == "Q1"
        with pytest.raises(AlreadyExists):
            await store.queue.enqueue(entry(), T0)
    finally:
        await store.close()
    store = await backend.open()
    try:
        got = await store.queue.get("Q1")
        assert got.message == MESSAGE and got.size == len(MESSAGE)
        assert (got.sender, got.ret, got.envid, got.smtputf8, got.body_type) == (
            "a@example.org",
            "HDRS",
            "env-1",
            True,
            "8BITMIME",
        )
        first, second = got.recipients
        assert (first.address, first.domain, first.notify) == (
            "x@example.net",
            "example.net",
            ("FAILURE", "SUCCESS"),
        )
        assert first.orcpt == "rfc822;x@example.net" and second.notify is None
        for r in got.recipients:
            assert r.state is RecipientState.QUEUED and r.next_attempt == T0
        assert await store.queue.next_due() == T0
    finally:
        await store.close()


async def test_notify_never_round_trips_as_empty(store: Store) -> None:
    e = entry()
    never = NewEntry("Q2", e.sender, (NewRecipient("z@example.net", "example.net", ()),), b"x")
    await store.queue.enqueue(never, T0)
    assert (await store.queue.get("Q2")).recipients[0].notify == ()


async def test_a_lease_has_one_holder_until_it_expires(store: Store) -> None:
    await store.queue.enqueue(entry(), T0)
    assert await store.queue.lease_due("w1", T0 - 1, 60, 10) == []  # not due yet
    [leased] = await store.queue.lease_due("w1", T0, 60, 10)
    assert leased.id == "Q1" and leased.message == MESSAGE and leased.lease_owner == "w1"
    assert await store.queue.lease_due("w2", T0 + 59, 60, 10) == []
    assert not await store.queue.renew("Q1", "w2", T0 + 59, 60)
    assert await store.queue.renew("Q1", "w1", T0 + 59, 60)
    assert await store.queue.lease_due("w2", T0 + 100, 60, 10) == []  # renewed to T0 + 119
    [taken] = await store.queue.lease_due("w2", T0 + 120, 60, 10)  # the holder died
    assert taken.lease_owner == "w2"


async def test_racing_workers_never_share_an_entry(store: Store) -> None:
    for n in range(20):
        await store.queue.enqueue(entry(f"R{n}"), T0)
    ids: list[str] = []
    for _ in range(20):  # a worker that lost a race takes fewer now and the rest next round
        got = await asyncio.gather(*(store.queue.lease_due(f"w{k}", T0, 60, 7) for k in range(6)))
        ids += [m.id for batch in got for m in batch]
        if len(ids) >= 20:
            break
    assert sorted(ids) == sorted(f"R{n}" for n in range(20))  # all taken, none twice


async def test_outcomes_schedule_the_next_attempt_and_finish_the_entry(store: Store) -> None:
    await store.queue.enqueue(entry(), T0)
    await store.queue.lease_due("w", T0, 60, 10)
    after = await store.queue.record(
        "Q1",
        [
            update(0, RecipientState.DELIVERED, report=Report.DELIVERED),
            update(1, RecipientState.QUEUED, T0 + 300),
        ],
        T0 + 1,
    )
    first, second = after.recipients
    assert first.state is RecipientState.DELIVERED and first.report is Report.DELIVERED
    assert (second.state, second.attempts, second.next_attempt) == (
        RecipientState.QUEUED,
        1,
        T0 + 300,
    )
    assert (second.code, second.enhanced, second.reason) == (451, "4.7.1", "try later")
    assert second.remote_host == "mx [192.0.2.1]" and second.last_attempt == T0 + 1
    await store.queue.release("Q1", "w", [0], T0 + 1)
    assert await store.queue.next_due() == T0 + 300
    assert await store.queue.lease_due("w2", T0 + 299, 60, 10) == []
    [again] = await store.queue.lease_due("w2", T0 + 300, 60, 10)
    assert again.recipients[0].report is None
    failed = update(1, RecipientState.FAILED, report=Report.FAILED)
    await store.queue.record("Q1", [failed], T0 + 301)
    await store.queue.release("Q1", "w2", [], T0 + 301)  # the report could not be stored
    assert (await store.queue.get("Q1")).next_attempt == T0 + 361
    await store.queue.release("Q1", "w2", [1], T0 + 400)
    with pytest.raises(NotFound):
        await store.queue.get("Q1")  # nothing left to do: gone
    assert await store.queue.next_due() is None


async def test_a_recipient_already_final_is_not_changed_again(store: Store) -> None:
    await store.queue.enqueue(entry(), T0)
    await store.queue.record("Q1", [update(0, RecipientState.DELIVERED)], T0)
    after = await store.queue.record("Q1", [update(0, RecipientState.FAILED)], T0)
    assert after.recipients[0].state is RecipientState.DELIVERED
    assert after.recipients[0].attempts == 1


async def test_delay_warning_marks_queued_recipients_once(store: Store) -> None:
    await store.queue.enqueue(entry(), T0)
    warned = await store.queue.warn_delayed("Q1", [1])
    assert warned.warned
    assert [r.report for r in warned.recipients] == [None, Report.DELAYED]


async def test_hold_release_retry_remove_and_unknown_ids(store: Store) -> None:
    await store.queue.enqueue(entry(), T0)
    await store.queue.record("Q1", [update(1, RecipientState.QUEUED, T0 + 900)], T0)
    await store.queue.record("Q1", [update(0, RecipientState.QUEUED, T0 + 900)], T0)
    await store.queue.hold("Q1", True, T0)
    assert await store.queue.lease_due("w", T0 + 1000, 60, 10) == []
    assert await store.queue.next_due() is None
    [listed] = await store.queue.list_entries()
    assert listed.held and listed.message == b"" and len(listed.recipients) == 2
    await store.queue.hold("Q1", False, T0 + 5)  # released: due at once
    assert await store.queue.next_due() == T0 + 5
    await store.queue.record("Q1", [update(0, RecipientState.QUEUED, T0 + 900)], T0 + 5)
    await store.queue.release("Q1", "nobody", [], T0 + 5)
    assert await store.queue.retry(None, T0 + 6) == 1
    assert await store.queue.next_due() == T0 + 6
    for op in (
        store.queue.get("NOPE"),
        store.queue.hold("NOPE", True, T0),
        store.queue.retry("NOPE", T0),
        store.queue.remove("NOPE"),
        store.queue.bounce("NOPE", "why", T0),
    ):
        with pytest.raises(NotFound, match="no queue entry NOPE"):
            await op
    await store.queue.remove("Q1")
    assert await store.queue.list_entries() == []


async def test_bounce_fails_queued_recipients_with_the_reports_they_asked_for(
    store: Store,
) -> None:
    e = entry()
    rcpts = (*e.recipients, NewRecipient("n@example.net", "example.net", ()))
    await store.queue.enqueue(NewEntry("Q3", e.sender, rcpts, b"m"), T0)
    await store.queue.record("Q3", [update(0, RecipientState.DELIVERED)], T0)
    await store.queue.bounce("Q3", "removed by the postmaster", T0 + 10)
    got = await store.queue.get("Q3")
    assert [r.state for r in got.recipients] == [
        RecipientState.DELIVERED,
        RecipientState.FAILED,
        RecipientState.FAILED,
    ]
    assert [r.report for r in got.recipients] == [None, Report.FAILED, None]  # NOTIFY=NEVER
    assert got.recipients[1].reason == "removed by the postmaster"
    assert got.next_attempt == T0 + 10
