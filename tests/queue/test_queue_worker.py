"""The queue worker (courriel.queue.worker) on a real store, with a scripted transport.

The transport is the interface here, not what is examined: the tests check what the worker
leases, how it groups recipients, what it records, when it retries and what it reports.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage

import pytest

from courriel.config import QueueConfig
from courriel.queue.outbound import Envelope, Recipient
from courriel.queue.transport import Outcome, Status
from courriel.queue.worker import Worker
from courriel.store.base import NotFound, Store, User
from courriel.store.queue import RecipientState
from courriel.testing.fill import add_user
from courriel.testing.transports import ScriptedTransport

T0 = 1_780_000_000.0
HOST = "mail.example.test"
MESSAGE = (
    b"From: alice@example.test\r\nTo: bob@example.net\r\nSubject: plans\r\n"
    b"Message-ID: <p1@example.test>\r\n\r\nSee you at noon.\r\n"
)
CFG = QueueConfig()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def alice(store: Store) -> User:
    return await add_user(store, "alice@example.test", "pw")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def transport() -> ScriptedTransport:
    return ScriptedTransport()


@pytest.fixture
async def worker(store: Store, transport: ScriptedTransport, clock: Clock) -> AsyncIterator[Worker]:
    w = Worker(store, transport, CFG, HOST, clock=clock, owner="test")
    yield w
    await w.idle()


async def submit(worker: Worker, *rcpts: Recipient, sender: str = "alice@example.test") -> str:
    env = Envelope(sender, rcpts, ret=None, envid="e-1")
    return await worker.outbound.enqueue(env, MESSAGE)


async def run_due(worker: Worker) -> int:
    started = await worker.deliver_due()
    await worker.idle()
    return started


async def inbox(store: Store, user: User) -> list[EmailMessage]:
    box = await store.get_mailbox(user.id, "INBOX")
    assert box is not None
    out = []
    for info in await store.list_messages(box.id):
        raw = await store.read_message(box.id, info.uid)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def words_of(notice: EmailMessage) -> str:
    """The human-readable part of a DSN, with its line breaks as spaces."""
    text = next(iter(notice.iter_parts()))
    assert isinstance(text, EmailMessage)
    return " ".join(text.get_content().split())


def status_of(notice: EmailMessage) -> list[dict[str, str]]:
    """The per-recipient blocks of a DSN's message/delivery-status part."""
    parts = list(notice.iter_parts())
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list)
    return [dict(b.items()) for b in blocks[1:]]


async def test_delivered_recipients_are_grouped_by_domain_and_the_entry_goes(
    store: Store, worker: Worker, transport: ScriptedTransport
) -> None:
    queue_id = await submit(
        worker,
        Recipient("bob@example.net"),
        Recipient("carol@example.com"),
        Recipient("dan@example.net"),
    )
    assert await run_due(worker) == 1
    calls = sorted((c.domain, [r.address for r in c.message.recipients]) for c in transport.calls)
    assert calls == [
        ("example.com", ["carol@example.com"]),
        ("example.net", ["bob@example.net", "dan@example.net"]),  # one transaction per domain
    ]
    sent = transport.calls[0].message
    assert sent.message == MESSAGE and sent.sender == "alice@example.test"
    assert sent.envid == "e-1" and sent.queue_id == queue_id
    with pytest.raises(NotFound):
        await store.queue.get(queue_id)


async def test_a_permanent_failure_bounces_to_the_local_sender_at_once(
    store: Store, worker: Worker, transport: ScriptedTransport, alice: User
) -> None:
    transport.script["bob@example.net"] = [Status.PERMANENT]
    queue_id = await submit(
        worker, Recipient("bob@example.net", orcpt="rfc822;Bob@example.net"), Recipient("c@x.org")
    )
    await run_due(worker)
    [notice] = await inbox(store, alice)
    assert notice["Subject"] == "Undelivered Mail Returned to Sender"
    assert notice["Return-Path"] == "<>"
    text = words_of(notice)
    assert "refused the message" in text
    assert "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown" in text
    [block] = status_of(notice)
    assert block["Final-Recipient"] == "rfc822; bob@example.net"
    assert block["Original-Recipient"] == "rfc822; Bob@example.net"
    assert (block["Action"], block["Status"]) == ("failed", "5.1.1")
    assert block["Remote-MTA"] == "dns; mx.example.net"
    with pytest.raises(NotFound):
        await store.queue.get(queue_id)  # both recipients are final and the notice went out


async def test_outcomes_of_several_domains_recorded_at_once_make_one_notice(
    store: Store, worker: Worker, transport: ScriptedTransport, alice: User
) -> None:
    # Each domain's outcome goes to the store as soon as it is known, without waiting for the
    # others; the notice still covers what every domain's record said.
    transport.script["bob@example.net"] = [Status.PERMANENT]
    transport.script["carol@example.com"] = [Status.PERMANENT]
    transport.script["dan@example.org"] = [Status.TEMPORARY]
    queue_id = await submit(
        worker,
        Recipient("bob@example.net"),
        Recipient("carol@example.com"),
        Recipient("dan@example.org", notify=("FAILURE",)),
    )
    await run_due(worker)
    [notice] = await inbox(store, alice)
    blocks = status_of(notice)
    assert sorted(b["Final-Recipient"] for b in blocks) == [
        "rfc822; bob@example.net",
        "rfc822; carol@example.com",
    ]
    entry = await store.queue.get(queue_id)
    states = [(r.address, r.state, r.report) for r in entry.recipients]
    assert states == [
        ("bob@example.net", RecipientState.FAILED, None),
        ("carol@example.com", RecipientState.FAILED, None),
        ("dan@example.org", RecipientState.QUEUED, None),
    ]


async def test_a_temporary_failure_is_retried_on_the_schedule(
    store: Store, worker: Worker, transport: ScriptedTransport, clock: Clock, alice: User
) -> None:
    transport.script["bob@example.net"] = [Status.TEMPORARY, Status.TEMPORARY, Status.DELIVERED]
    queue_id = await submit(worker, Recipient("bob@example.net"))
    await run_due(worker)
    entry = await store.queue.get(queue_id)
    [r] = entry.recipients
    assert (r.state, r.attempts, r.next_attempt) == (RecipientState.QUEUED, 1, T0 + 300)
    assert (r.code, r.reason) == (451, "4.7.1 Greylisted, please try again later")
    clock.now = T0 + 299
    assert await run_due(worker) == 0
    clock.now = T0 + 300
    assert await run_due(worker) == 1
    assert (await store.queue.get(queue_id)).recipients[0].next_attempt == T0 + 300 + 600
    clock.now = T0 + 900
    await run_due(worker)
    assert transport.attempts("bob@example.net") == 3
    with pytest.raises(NotFound):
        await store.queue.get(queue_id)
    assert await inbox(store, alice) == []  # no notice was asked for a success


async def test_expiry_returns_the_message_saying_how_long_we_tried(
    store: Store, worker: Worker, transport: ScriptedTransport, clock: Clock, alice: User
) -> None:
    transport.script["bob@example.net"] = [Status.TEMPORARY]
    await submit(worker, Recipient("bob@example.net", notify=("FAILURE",)))
    while await store.queue.list_entries():
        due = await store.queue.next_due()
        assert due is not None
        clock.now = due
        await run_due(worker)
    assert clock.now == T0 + CFG.give_up_seconds  # the last try was at the deadline
    [notice] = await inbox(store, alice)  # NOTIFY=FAILURE: no delay warning
    text = words_of(notice)
    assert "courriel kept trying for 5 days and gave up" in text
    [block] = status_of(notice)
    assert (block["Action"], block["Status"]) == ("failed", "5.4.7")
    assert block["Diagnostic-Code"].startswith("smtp; 451 4.7.1 Greylisted")


async def test_one_delay_warning_then_delivery_with_the_success_asked_for(
    store: Store, worker: Worker, transport: ScriptedTransport, clock: Clock, alice: User
) -> None:
    transport.script["bob@example.net"] = [Status.TEMPORARY] * 9 + [Status.DELIVERED]
    rcpt = Recipient("bob@example.net", notify=("DELAY", "SUCCESS"))
    await submit(worker, rcpt)
    while await store.queue.list_entries():
        due = await store.queue.next_due()
        assert due is not None
        clock.now = due
        await run_due(worker)
    delayed, delivered = await inbox(store, alice)
    assert delayed["Subject"] == "Delayed Mail (still being retried)"
    [block] = status_of(delayed)
    assert block["Action"] == "delayed" and "Will-Retry-Until" in block
    assert delivered["Subject"] == "Successful Mail Delivery Report"
    assert status_of(delivered)[0]["Action"] == "delivered"


@pytest.mark.parametrize(
    ("sender", "notify"), [("alice@example.test", ()), ("", None)], ids=["never", "null-sender"]
)
async def test_no_notice_when_never_asked_or_for_the_null_sender(
    store: Store,
    worker: Worker,
    transport: ScriptedTransport,
    alice: User,
    sender: str,
    notify: tuple[str, ...] | None,
) -> None:
    transport.script["bob@example.net"] = [Status.PERMANENT]
    queue_id = await submit(worker, Recipient("bob@example.net", notify=notify), sender=sender)
    await run_due(worker)
    assert await inbox(store, alice) == []
    assert await store.queue.list_entries() == []
    with pytest.raises(NotFound):
        await store.queue.get(queue_id)


async def test_a_remote_sender_gets_the_notice_through_the_queue(
    store: Store, worker: Worker, transport: ScriptedTransport
) -> None:
    transport.script["bob@example.net"] = [Status.PERMANENT]
    await submit(worker, Recipient("bob@example.net"), sender="someone@elsewhere.example")
    transport.script["someone@elsewhere.example"] = [Status.PERMANENT]
    await run_due(worker)
    [notice_entry] = await store.queue.list_entries()
    assert notice_entry.sender == ""  # RFC 5321 §4.5.5: the null reverse-path
    [r] = notice_entry.recipients
    assert (r.address, r.notify) == ("someone@elsewhere.example", ())
    await run_due(worker)  # it fails too: dropped, never answered by another notice
    assert await store.queue.list_entries() == []


async def test_a_transport_that_raises_is_a_temporary_failure(
    store: Store, worker: Worker, transport: ScriptedTransport
) -> None:
    async def broken(domain: str, message: object) -> list[Outcome]:
        raise RuntimeError("boom")

    transport.deliver = broken  # type: ignore[method-assign]
    queue_id = await submit(worker, Recipient("bob@example.net"))
    await run_due(worker)
    [r] = (await store.queue.get(queue_id)).recipients
    assert r.state is RecipientState.QUEUED and r.reason == "internal error: boom"


async def test_held_entries_wait_and_released_ones_go_at_once(
    store: Store, worker: Worker, transport: ScriptedTransport, clock: Clock
) -> None:
    queue_id = await submit(worker, Recipient("bob@example.net"))
    await store.queue.hold(queue_id, True, clock.now)
    assert await run_due(worker) == 0
    await store.queue.hold(queue_id, False, clock.now)
    assert await run_due(worker) == 1
    assert transport.attempts("bob@example.net") == 1


async def test_the_loop_wakes_when_a_message_is_queued_and_stops_cleanly(store: Store) -> None:
    transport = ScriptedTransport()
    cfg = replace(CFG, poll_seconds=60.0)  # only the wake-up can make this quick
    w = Worker(store, transport, cfg, HOST)
    loop = asyncio.create_task(w.run())
    try:
        await asyncio.sleep(0.05)
        await w.outbound.enqueue(Envelope("a@example.test", (Recipient("b@example.net"),)), MESSAGE)
        await asyncio.wait_for(transport.called.wait(), 5)
    finally:
        await w.stop()
        async with asyncio.timeout(5):
            await loop
    assert transport.attempts("b@example.net") == 1
    assert await store.queue.list_entries() == []  # stop waited for the delivery to be recorded


async def test_two_workers_never_take_the_same_entry(store: Store) -> None:
    transport = ScriptedTransport(gate=asyncio.Event())
    cfg = replace(CFG, concurrency=50)
    first = Worker(store, transport, cfg, HOST, owner="first")
    second = Worker(store, transport, cfg, HOST, owner="second")
    for n in range(30):
        rcpt = Recipient(f"r{n}@example.net")
        await first.outbound.enqueue(Envelope("a@example.test", (rcpt,)), MESSAGE)
    taken = await asyncio.gather(first.deliver_due(), second.deliver_due())
    assert sum(taken) == 30
    transport.gate.set()
    await asyncio.gather(first.idle(), second.idle())
    assert all(transport.attempts(f"r{n}@example.net") == 1 for n in range(30))
    assert await store.queue.list_entries() == []


async def test_concurrency_bounds_the_deliveries_in_flight(store: Store) -> None:
    transport = ScriptedTransport(gate=asyncio.Event())
    w = Worker(store, transport, replace(CFG, concurrency=3), HOST)
    for n in range(7):
        rcpt = Recipient(f"r{n}@d{n}.example")
        await w.outbound.enqueue(Envelope("a@example.test", (rcpt,)), MESSAGE)
    assert await w.deliver_due() == 3
    await asyncio.sleep(0.05)
    assert transport.in_flight == 3 and await w.deliver_due() == 0
    transport.gate.set()
    await w.idle()
    while await run_due(w):
        pass
    assert transport.most_in_flight == 3 and len(transport.calls) == 7


async def test_a_bounce_by_the_postmaster_reaches_the_sender(
    store: Store, worker: Worker, transport: ScriptedTransport, clock: Clock, alice: User
) -> None:
    transport.script["bob@example.net"] = [Status.TEMPORARY]
    queue_id = await submit(worker, Recipient("bob@example.net"))
    await run_due(worker)
    await store.queue.bounce(queue_id, "returned to the sender by the postmaster", clock.now + 1)
    clock.now += 1
    assert await run_due(worker) == 1
    [notice] = await inbox(store, alice)
    assert "could not be delivered: returned to the sender by the postmaster" in words_of(notice)
    assert status_of(notice)[0]["Action"] == "failed"
    assert await store.queue.list_entries() == []
    assert transport.attempts("bob@example.net") == 1  # no further try after the bounce


async def test_a_long_delivery_keeps_its_lease(store: Store) -> None:
    transport = ScriptedTransport(gate=asyncio.Event())
    cfg = replace(CFG, lease_seconds=0.3)
    first = Worker(store, transport, cfg, HOST, owner="first")
    second = Worker(store, ScriptedTransport(), cfg, HOST, owner="second")
    await first.outbound.enqueue(Envelope("a@example.test", (Recipient("b@example.net"),)), MESSAGE)
    assert await first.deliver_due() == 1
    for _ in range(4):  # four lease lengths: renewed every tenth of a second
        await asyncio.sleep(0.3)
        assert await second.deliver_due() == 0
    transport.gate.set()
    await first.idle()
    assert transport.attempts("b@example.net") == 1
    assert await store.queue.list_entries() == []
