"""Two courriel nodes on one PostgreSQL database, seen through SMTP, IMAP and POP3.

Node A and node B are two ``courriel serve`` processes with their own data directories,
certificates and ports (``nodes_protocols_nodes.py``); what one node does must reach the
sessions of the other through the store and its LISTEN/NOTIFY events, as on two machines:
a submission on A is pushed to an IDLE session on B, flags and expunges likewise, the POP3
maildrop lock holds across nodes, and APPENDs racing through both nodes get UIDs in strict
order with no gaps. Each test makes its own user; the nodes are shared by the module because
starting two servers costs more than all the tests together.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import smtplib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from nodes_protocols_clients import Completed, Imap, Pop3, Response, appenduid
from nodes_protocols_nodes import Cluster, Node

from courriel.store.base import Store
from courriel.store.postgres import open_postgres_url
from courriel.testing import pg as pg_testdb
from courriel.testing.missing import report_missing

pytestmark = pytest.mark.postgres

PUSH_DEADLINE = 1.0  # seconds from a change acknowledged on A to its response in IDLE on B
CLIENTS_PER_NODE, APPENDS_PER_CLIENT = 4, 10
FETCH_FLAGS = re.compile(rb"\* (\d+) FETCH \(.*FLAGS \(([^)]*)\).*\)")


@dataclass(frozen=True, slots=True)
class Account:
    address: str
    password: str


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Both nodes, started once for the module; ``cluster`` checks the server first."""
    nodes = Cluster.start(Path(tmp_path_factory.mktemp("nodes")), pg_testdb.server_url())
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """``shared_cluster``, or each test reported as not run where PostgreSQL is unreachable."""
    server = pg_testdb.server_url()
    if asyncio.run(pg_testdb.unreachable(server)) is not None:
        report_missing(f"PostgreSQL at {server}", request.node.nodeid)
    nodes: Cluster = request.getfixturevalue("shared_cluster")
    return nodes


@pytest.fixture
def account(cluster: Cluster) -> Account:
    """A new user of its own for each test, made through node A's command line."""
    password = secrets.token_urlsafe(12)
    return Account(cluster.add_user(f"u{secrets.token_hex(6)}", password), password)


def message(sender: str, subject: str) -> bytes:
    """A small RFC 5322 message with CRLF line ends and no line starting with a dot."""
    return (
        f"From: <{sender}>\r\nTo: <{sender}>\r\nSubject: {subject}\r\n"
        f"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{secrets.token_hex(8)}@example.org>\r\n\r\n"
        f"Body of {subject}.\r\n"
    ).encode()


async def login(node: Node, account: Account) -> Imap:
    return await Imap.login(
        node.ports["imaps"], node.ssl_context(), account.address, account.password
    )


async def idle_on(node: Node, account: Account, exists: int) -> Imap:
    """A session on ``node`` with INBOX selected (holding ``exists`` messages), in IDLE."""
    session = await login(node, account)
    selected = await session.command("SELECT INBOX")
    assert Response(f"* {exists} EXISTS".encode()) in selected.untagged, selected
    await session.idle()
    return session


def submit(node: Node, account: Account, raw: bytes) -> float:
    """Submission with STARTTLS and AUTH (RFC 6409, RFC 3207, RFC 4954); when 250 came."""
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
        smtp.starttls(context=node.ssl_context())
        smtp.login(account.address, account.password)
        refused = smtp.sendmail(account.address, [account.address], raw)
        accepted = time.monotonic()
        assert refused == {}
    return accepted


@asynccontextmanager
async def inbox_of(url: str, address: str) -> AsyncIterator[tuple[Store, int]]:
    """A store of the test's own on the database, and the user's INBOX id."""
    store = await open_postgres_url(url, pool_size=1)
    try:
        user = await store.get_user(address)
        assert user is not None
        inbox = await store.get_mailbox(user.id, "INBOX")
        assert inbox is not None
        yield store, inbox.id
    finally:
        await store.close()


async def stored(url: str, address: str, uid: int) -> bytes:
    """The bytes the database holds for INBOX message ``uid``."""
    async with inbox_of(url, address) as (store, inbox):
        return await store.read_message(inbox, uid)


async def inbox_uids(url: str, address: str) -> list[int]:
    async with inbox_of(url, address) as (store, inbox):
        return [m.uid for m in await store.list_messages(inbox)]


def flags_of(response: Response) -> tuple[int, set[bytes]]:
    found = FETCH_FLAGS.fullmatch(response.text)
    assert found is not None, response
    return int(found.group(1)), set(found.group(2).split())


async def test_submission_on_a_is_pushed_to_idle_on_b(cluster: Cluster, account: Account) -> None:
    # Submission takes only a From naming the authenticated user (RFC 6409 §8).
    raw = message(account.address, "submitted through node A")
    idler = await idle_on(cluster.b, account, exists=0)
    try:
        accepted = await asyncio.to_thread(submit, cluster.a, account, raw)
        await idler.wait_for(rb"\* 1 EXISTS", accepted + PUSH_DEADLINE)  # RFC 2177 §3
        await idler.done()
        fetched = await idler.command("UID FETCH 1:* (RFC822.SIZE BODY.PEEK[])")
    finally:
        await idler.close()
    [response] = fetched.untagged
    held = await stored(cluster.url, account.address, 1)
    assert re.fullmatch(rb"\* 1 FETCH \(UID 1 RFC822\.SIZE (\d+) BODY\[\] \{\d+\}\)", response.text)
    assert response.literals == (held,)
    assert f"RFC822.SIZE {len(held)} ".encode() in response.text
    # Delivery puts its trace fields in front (RFC 5321 §4.4); the message follows intact.
    trace = held.removesuffix(raw)
    assert trace != held and trace.startswith(b"Return-Path: "), held
    assert b"\r\nReceived: from " in trace, held


async def append_on(session: Imap, raw: bytes, flags: str = "") -> int:
    done = await session.command(f"APPEND INBOX ({flags})", raw)
    return appenduid(done)[1]


async def test_flags_and_expunge_on_a_are_pushed_to_idle_on_b(
    cluster: Cluster, account: Account
) -> None:
    writer = await login(cluster.a, account)
    idler: Imap | None = None
    try:
        for n in range(3):
            assert await append_on(writer, message(account.address, f"m{n}")) == n + 1
        await writer.command("SELECT INBOX")
        idler = await idle_on(cluster.b, account, exists=3)

        await writer.command("STORE 2 +FLAGS.SILENT (\\Flagged $Forwarded)")
        response, _ = await idler.wait_for(rb"\* 2 FETCH .*", time.monotonic() + PUSH_DEADLINE)
        assert flags_of(response) == (2, {b"\\Flagged", b"$Forwarded"})  # RFC 9051 §7.5.2

        await writer.command("STORE 2 -FLAGS.SILENT ($Forwarded)")
        response, _ = await idler.wait_for(rb"\* 2 FETCH .*", time.monotonic() + PUSH_DEADLINE)
        assert flags_of(response) == (2, {b"\\Flagged"})

        await writer.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
        expunged = await writer.command("EXPUNGE")
        assert Response(b"* 2 EXPUNGE") in expunged.untagged
        deadline = time.monotonic() + PUSH_DEADLINE
        _, seen = await idler.wait_for(rb"\* 2 EXPUNGE", deadline)  # RFC 9051 §7.5.1
        assert [r for r in seen if r.text.endswith(b"EXPUNGE")] == [Response(b"* 2 EXPUNGE")]
        await idler.done()
        after = await idler.command("UID FETCH 1:* (FLAGS)")
        assert [r.text for r in after.untagged] == [
            b"* 1 FETCH (UID 1 FLAGS ())",
            b"* 2 FETCH (UID 3 FLAGS ())",
        ]
    finally:
        await writer.close()
        if idler is not None:
            await idler.close()


async def test_pop3_maildrop_lock_holds_across_nodes(cluster: Cluster, account: Account) -> None:
    seeder = await login(cluster.a, account)
    try:
        for n in range(2):
            await append_on(seeder, message(account.address, f"pop{n}"))
    finally:
        await seeder.close()
    idler = await idle_on(cluster.b, account, exists=2)
    holder = await Pop3.connect(cluster.a.ports["pop3s"], cluster.a.ssl_context())
    other = await Pop3.connect(cluster.b.ports["pop3s"], cluster.b.ssl_context())
    try:
        assert (await holder.login(account.address, account.password)).startswith("+OK")
        refused = await other.login(account.address, account.password)
        assert refused.startswith("-ERR [IN-USE]"), refused  # RFC 2449 §8.1.1
        assert (await holder.command("DELE 1")).startswith("+OK")
        # DELE only marks (RFC 1939 §5): the message is still stored, the lock still held.
        assert await inbox_uids(cluster.url, account.address) == [1, 2]
        refused = await other.login(account.address, account.password)
        assert refused.startswith("-ERR [IN-USE]"), refused

        quit_reply = await holder.command("QUIT")  # RFC 1939 §6: UPDATE removes it
        assert quit_reply.startswith("+OK"), quit_reply
        await idler.wait_for(rb"\* 1 EXPUNGE", time.monotonic() + PUSH_DEADLINE)
        # The same connection on B may try again (RFC 1939 §7) and now gets the maildrop.
        granted = await other.login(account.address, account.password)
        assert granted.startswith("+OK"), granted
        stat = await other.command("STAT")
        assert re.fullmatch(r"\+OK 1 \d+", stat), stat
        assert (await other.command("QUIT")).startswith("+OK")
        assert await inbox_uids(cluster.url, account.address) == [2]
    finally:
        await holder.close()
        await other.close()
        await idler.close()


@dataclass(frozen=True, slots=True)
class Appended:
    client: str
    subject: str
    sent: float  # time.monotonic() before the command went out
    acked: float  # after its tagged OK came back
    uidvalidity: int
    uid: int


async def append_client(
    node: Node, account: Account, name: str, start: asyncio.Barrier
) -> list[Appended]:
    session = await login(node, account)
    try:
        await start.wait()  # every session logged in: the appends begin together
        out = []
        for n in range(APPENDS_PER_CLIENT):
            subject = f"{name}-{n}"
            sent = time.monotonic()
            done = await session.command("APPEND INBOX ()", message(account.address, subject))
            uidvalidity, uid = appenduid(done)  # RFC 4315 §3
            out.append(Appended(name, subject, sent, time.monotonic(), uidvalidity, uid))
        return out
    finally:
        await session.close()


def subjects(fetched: Completed) -> dict[int, str]:
    """UID -> Subject from ``UID FETCH (BODY.PEEK[HEADER.FIELDS (SUBJECT)])`` responses."""
    out = {}
    for response in fetched.untagged:
        found = re.fullmatch(
            rb"\* \d+ FETCH \(UID (\d+) BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{\d+\}\)", response.text
        )
        assert found is not None, response
        [header] = response.literals
        out[int(found.group(1))] = header.decode().removeprefix("Subject: ").strip()
    return out


async def test_concurrent_appends_through_both_nodes_get_gapless_uids(
    cluster: Cluster, account: Account
) -> None:
    start = asyncio.Barrier(2 * CLIENTS_PER_NODE)
    # A TaskGroup: one client failing cancels the others, which would wait at the barrier.
    async with asyncio.timeout(30), asyncio.TaskGroup() as group:
        clients = [
            group.create_task(append_client(node, account, f"{node.name}{i}", start))
            for node, i in itertools.product((cluster.a, cluster.b), range(CLIENTS_PER_NODE))
        ]
    results = [client.result() for client in clients]
    appended = [a for per_client in results for a in per_client]
    total = 2 * CLIENTS_PER_NODE * APPENDS_PER_CLIENT
    assert len({a.uidvalidity for a in appended}) == 1
    # RFC 9051 §2.3.1.1: unique and ascending. Every APPEND was acknowledged, so UIDNEXT moved
    # once per message and no UID may be missing.
    assert sorted(a.uid for a in appended) == list(range(1, total + 1))
    for per_client in results:
        uids = [a.uid for a in per_client]
        assert uids == sorted(uids), uids
    for earlier, later in itertools.product(appended, repeat=2):
        if earlier.acked < later.sent:  # acknowledged before the other was sent: a smaller UID
            assert earlier.uid < later.uid, (earlier, later)
    expected = {a.uid: a.subject for a in appended}
    for node in (cluster.a, cluster.b):
        reader = await login(node, account)
        try:
            selected = await reader.command("SELECT INBOX")
            assert Response(f"* {total} EXISTS".encode()) in selected.untagged
            assert any(f"[UIDNEXT {total + 1}]".encode() in r.text for r in selected.untagged)
            fetched = await reader.command("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        finally:
            await reader.close()
        assert subjects(fetched) == expected
