"""Many IMAP sessions change the same mailboxes at once; every session's view must stay right.

Theory of operation
-------------------
Eight sessions log in over implicit TLS, four on INBOX and four on Archive, and for a bounded
time each issues random FETCH, UID FETCH, STORE, UID STORE, SEARCH, EXPUNGE, APPEND, COPY, MOVE
and NOOP commands. Each session applies every untagged response it gets to its own model of the
mailbox (``stress_view.View``), which raises at the first broken rule: sequence numbers that
shift under FETCH/STORE/SEARCH, EXISTS that shrinks, a UID that changes, a MODSEQ that goes
down or flags that revert. After any response that left sequence numbers without a known UID
the session fetches them at once, so the model stays complete.

At checkpoints every session stops (a barrier), issues NOOP, and compares its model with a
fresh ``FETCH 1:*``; then all sessions on a mailbox must hold exactly the same UIDs and flags,
and the same as the store. The run uses one random seed, printed with any failure; set
COURRIEL_STRESS_SEED to replay one.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from stress_view import Fetched, Kind, View, Violation
from stress_wire import Client, Reply, Response

from courriel.store.base import MessageInfo
from courriel.testing.server import Account, MailServer

DURATION = 15.0
CHECKPOINT_EVERY = 3.0
SESSIONS_PER_MAILBOX = 4
MAILBOXES = ("INBOX", "Archive")
INITIAL_MESSAGES = 12
HIGH_WATER = 40  # past this, sessions lean towards deleting
FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Label1", "$Label2")
LOG_TAIL = 30


def _seqset(numbers: list[int]) -> str:
    """``1:3,7`` from ascending numbers."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], -1]:
        if n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    return ",".join(parts)


def _message(rng: random.Random, n: int) -> bytes:
    words = " ".join(rng.choice(("alpha", "beta", "gamma", "delta")) for _ in range(8))
    return (
        f"From: load{n}@example.net\r\nTo: alice@example.test\r\nSubject: stress {n}\r\n"
        f"Message-ID: <stress.{n}@example.net>\r\n\r\n{words}\r\n"
    ).encode()


@dataclass
class Session:
    name: str
    client: Client
    view: View
    rng: random.Random
    mailbox: str
    other: str
    fetch_items: str
    log: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=LOG_TAIL))
    counter: int = 0
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    checkpoints: int = 0

    async def run(self, command: str, kind: Kind, literal: bytes | None = None) -> Reply:
        self.log.append(f"C: {command}")
        reply = await self.client.command(command, literal)
        self.log.extend(f"S: {r.text.decode(errors='replace')}" for r in reply.untagged)
        self.log.append(f"S: {reply.done.status} {reply.done.text}")
        if reply.done.status == "BAD":
            raise Violation(f"{self.name}: BAD for a valid command {command!r}: {reply.done.text}")
        self.view.apply(reply.untagged, kind)
        self.counts["commands"] += 1
        for r in reply.untagged:
            words = r.text.split(b" ", 3)
            self.counts[words[2 if words[1][:1].isdigit() else 1].decode(errors="replace")] += 1
        return reply

    async def complete(self) -> None:
        """Fetches UIDs and flags of messages the view knows only by number (new arrivals)."""
        for _ in range(5):
            unknown = [i + 1 for i, u in enumerate(self.view.uids) if u is None]
            if not unknown:
                return
            await self.run(f"FETCH {_seqset(unknown)} {self.fetch_items}", Kind.NO_EXPUNGE)

    # --- the random commands ----------------------------------------------------------------

    def _range(self) -> str:
        n = len(self.view.uids)
        a = self.rng.randint(1, n)
        return f"{a}:{min(n, a + self.rng.randint(0, 4))}"

    def _uid_range(self) -> str:
        known = [u for u in self.view.uids if u is not None]
        a = self.rng.choice(known)
        return f"{a}:{a + self.rng.randint(0, 6)}"

    async def step(self) -> None:
        n = len(self.view.uids)
        r = self.rng.random()
        if n == 0 or (n < 4 and r < 0.5):
            await self.append()
        elif n > HIGH_WATER and r < 0.5:
            await self.run(f"STORE {self._range()} +FLAGS (\\Deleted)", Kind.NO_EXPUNGE)
            await self.run("EXPUNGE", Kind.ANY)
        elif r < 0.18:
            await self.run(f"FETCH {self._range()} {self.fetch_items}", Kind.NO_EXPUNGE)
        elif r < 0.26 and any(u is not None for u in self.view.uids):
            await self.run(f"UID FETCH {self._uid_range()} {self.fetch_items}", Kind.ANY)
        elif r < 0.44:
            await self.store()
        elif r < 0.52:
            await self.search()
        elif r < 0.60:
            await self.run("EXPUNGE", Kind.ANY)
        elif r < 0.72:
            await self.append()
        elif r < 0.82:
            target = self.rng.choice((self.mailbox, self.other))
            await self.run(f"COPY {self._range()} {target}", Kind.ANY)
        elif r < 0.92:
            await self.run(f"MOVE {self._range()} {self.other}", Kind.ANY)
        else:
            await self.run("NOOP", Kind.ANY)
        await self.complete()

    async def store(self) -> None:
        flag = self.rng.choice((*FLAGS, "\\Deleted"))
        op = self.rng.choice(("+FLAGS", "-FLAGS"))
        if self.rng.random() < 0.3 and any(u is not None for u in self.view.uids):
            await self.run(f"UID STORE {self._uid_range()} {op} ({flag})", Kind.ANY)
        else:
            await self.run(f"STORE {self._range()} {op} ({flag})", Kind.NO_EXPUNGE)

    async def search(self) -> None:
        key = self.rng.choice(("FLAGGED", "UNSEEN", "KEYWORD $Label1", "DELETED", "ALL"))
        reply = await self.run(f"SEARCH {key}", Kind.NO_EXPUNGE)
        for response in reply.untagged:
            tokens = response.tokens()
            if tokens[1:2] == ["SEARCH"]:
                numbers = [int(str(t)) for t in tokens[2:]]
                if any(not 1 <= x <= len(self.view.uids) for x in numbers):
                    raise Violation(f"{self.name}: SEARCH numbers {numbers} outside the view")

    async def append(self) -> None:
        self.counter += 1
        flags = " ".join(self.rng.sample(FLAGS, self.rng.randint(0, 2)))
        target = self.rng.choice((self.mailbox, self.other))
        message = _message(self.rng, self.counter)
        await self.run(f"APPEND {target} ({flags})", Kind.ANY, literal=message)

    # --- checkpoints ------------------------------------------------------------------------

    async def checkpoint(self) -> None:
        await self.run("NOOP", Kind.ANY)
        await self.complete()
        before = self.view.snapshot()
        fresh: list[Fetched] = []
        if self.view.uids:
            self.log.append(f"C: FETCH 1:* {self.fetch_items}")
            reply = await self.client.command(f"FETCH 1:* {self.fetch_items}")
            if reply.done.status != "OK":
                raise Violation(f"{self.name}: FETCH 1:* answered {reply.done}")
            fresh = self.view.apply(reply.untagged, Kind.NO_EXPUNGE)
        self.view.check_against(before, fresh)
        self.checkpoints += 1


async def _open(
    server: MailServer, account: Account, name: str, mailbox: str, qresync: bool
) -> Session:
    client = await Client.connect("localhost", server.port("imaps"), server.ssl_context())
    reply = await client.command(f'LOGIN "{account.address}" "{account.password}"')
    assert reply.done.status == "OK", reply
    caps = set((await client.command("CAPABILITY")).untagged[0].text.decode().upper().split())
    condstore = "CONDSTORE" in caps
    qresync = qresync and "QRESYNC" in caps
    if qresync:
        assert (await client.command("ENABLE QRESYNC")).done.status == "OK"
    other = next(m for m in MAILBOXES if m != mailbox)
    label = f"{name} ({mailbox}{', QRESYNC' if qresync else ''})"
    session = Session(
        name=label,
        client=client,
        view=View(label, condstore),
        rng=random.Random(),
        mailbox=mailbox,
        other=other,
        fetch_items="(UID FLAGS MODSEQ)" if condstore else "(UID FLAGS)",
    )
    select = f"SELECT {mailbox} (CONDSTORE)" if condstore and not qresync else f"SELECT {mailbox}"
    await session.run(select, Kind.ANY)
    await session.complete()
    return session


def _compare(sessions: list[Session], stored: dict[str, list[MessageInfo]]) -> None:
    """All sessions on one mailbox see the same UIDs and flags, and the same as the store."""
    for mailbox in MAILBOXES:
        group = [s for s in sessions if s.mailbox == mailbox]
        truth = [(m.uid, frozenset(m.flags)) for m in stored[mailbox]]
        for s in group:
            if s.view.state() != truth:
                raise Violation(
                    f"{s.name} sees {s.view.state()}\nthe store holds {truth}\n"
                    f"other sessions on {mailbox}: {[o.view.state() == truth for o in group]}"
                )


@dataclass
class Schedule:
    """When the next checkpoint is, and whether the run is over: one decision for everyone."""

    end: float
    next_checkpoint: float
    over: bool = False


async def _drive(session: Session, barrier: asyncio.Barrier, check: Any, plan: Schedule) -> None:
    while not plan.over:
        if time.monotonic() < plan.next_checkpoint:
            await session.step()
            continue
        await barrier.wait()  # everyone is between commands
        await session.checkpoint()
        if await barrier.wait() == 0:
            # One session compares and decides for all while the others wait at the barrier.
            await check()
            now = time.monotonic()
            plan.over = now >= plan.end
            plan.next_checkpoint = min(now + CHECKPOINT_EVERY, plan.end)
        await barrier.wait()


@pytest.mark.slow
async def test_concurrent_sessions_keep_consistent_views(stress_server: MailServer) -> None:
    seed = int(os.environ.get("COURRIEL_STRESS_SEED", str(random.SystemRandom().getrandbits(32))))
    server = stress_server
    account = server.add_user("alice@example.test", "stress test password")
    seeder = random.Random(seed)
    for mailbox in MAILBOXES:
        for i in range(INITIAL_MESSAGES):
            flags = seeder.sample(FLAGS, seeder.randint(0, 2))
            server.deliver(account, mailbox, _message(seeder, 10_000 + i), flags)
    sessions: list[Session] = []
    try:
        for i in range(SESSIONS_PER_MAILBOX * len(MAILBOXES)):
            mailbox = MAILBOXES[i % len(MAILBOXES)]
            sessions.append(await _open(server, account, f"s{i}", mailbox, qresync=i >= 4))
            sessions[-1].rng.seed(seed * 100 + i)

        async def check() -> None:
            stored = {m: await server.acall(_listed(server, account, m)) for m in MAILBOXES}
            _compare(sessions, stored)

        await _run_all(sessions, check, seed)
        total = sum((s.counts for s in sessions), collections.Counter[str]())
        # The run must have exercised what it checks: many commands, and the server telling
        # sessions about other sessions' work.
        assert total["commands"] >= 50 * len(sessions), total
        assert total["EXISTS"] > 0 and total["FETCH"] > 0, total
        assert total["EXPUNGE"] > 0, total
        assert total["VANISHED"] > 0 or not any("QRESYNC" in s.name for s in sessions), total
        checkpoints = {s.checkpoints for s in sessions}
        assert len(checkpoints) == 1 and min(checkpoints) >= DURATION // CHECKPOINT_EVERY - 1
    finally:
        for s in sessions:
            await s.client.close()


async def _run_all(sessions: list[Session], check: Any, seed: int) -> None:
    """Drives every session to the end; the first failure stops all and is reported."""
    barrier = asyncio.Barrier(len(sessions))
    start = time.monotonic()
    plan = Schedule(end=start + DURATION, next_checkpoint=start + CHECKPOINT_EVERY)
    tasks = [asyncio.create_task(_drive(s, barrier, check, plan)) for s in sessions]
    done, pending = await asyncio.wait(
        tasks, timeout=DURATION * 4, return_when=asyncio.FIRST_EXCEPTION
    )
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failures = [t.exception() for t in done if t.exception() is not None]
    if not failures and not pending:
        return
    error = failures[0] if failures else TimeoutError("the sessions did not finish in time")
    failed = next((s for s in sessions if str(error).startswith(s.name)), None)
    logs = [failed] if failed else sessions
    tail = "\n\n".join(f"{s.name}:\n" + "\n".join(s.log) for s in logs)
    raise AssertionError(
        f"stress run with COURRIEL_STRESS_SEED={seed} failed: {error}\n\n{tail}"
    ) from error


async def _listed(server: MailServer, account: Account, mailbox: str) -> list[MessageInfo]:
    box = await server.store.get_mailbox(account.user_id, mailbox)
    assert box is not None
    return await server.store.list_messages(box.id)


def test_seqset_compresses_ranges() -> None:
    assert _seqset([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8"
    assert _seqset([4]) == "4"


def test_view_rejects_expunge_in_answer_to_fetch() -> None:
    view = View("probe", condstore=True)
    view.apply((Response(b"* 2 EXISTS", ()),), Kind.ANY)
    with pytest.raises(Violation, match="EXPUNGE in answer to FETCH"):
        view.apply((Response(b"* 1 EXPUNGE", ()),), Kind.NO_EXPUNGE)


def test_view_rejects_a_modseq_going_down() -> None:
    view = View("probe", condstore=True)
    view.apply((Response(b"* 1 EXISTS", ()),), Kind.ANY)
    view.apply((Response(b"* 1 FETCH (UID 7 FLAGS (\\Seen) MODSEQ (12))", ()),), Kind.ANY)
    with pytest.raises(Violation, match="MODSEQ went down 12 -> 11"):
        view.apply((Response(b"* 1 FETCH (UID 7 FLAGS () MODSEQ (11))", ()),), Kind.ANY)


def test_view_rejects_a_shrinking_exists_and_a_changed_uid() -> None:
    view = View("probe", condstore=False)
    view.apply((Response(b"* 2 EXISTS", ()), Response(b"* 2 FETCH (UID 9)", ())), Kind.ANY)
    with pytest.raises(Violation, match="EXISTS 1 below"):
        view.apply((Response(b"* 1 EXISTS", ()),), Kind.ANY)
    with pytest.raises(Violation, match="was UID 9, now 10"):
        view.apply((Response(b"* 2 FETCH (UID 10 FLAGS ())", ()),), Kind.ANY)


def test_view_follows_vanished_and_expunge() -> None:
    view = View("probe", condstore=True)
    lines = [b"* 4 EXISTS", *(f"* {i} FETCH (UID {i * 10} FLAGS ())".encode() for i in range(1, 5))]
    view.apply(tuple(Response(ln, ()) for ln in lines), Kind.ANY)
    view.apply((Response(b"* VANISHED 20,40", ()), Response(b"* 1 EXPUNGE", ())), Kind.ANY)
    assert view.uids == [30]
    view.apply((Response(b"* VANISHED (EARLIER) 30", ()),), Kind.ANY)
    assert view.uids == [30]


def test_responses_with_literals_parse_into_tokens() -> None:
    response = Response(
        b"* 3 FETCH (UID 5 BODY[HEADER.FIELDS (SUBJECT)] {11} FLAGS (\\Seen))", (b"Subject: x\n",)
    )
    assert response.tokens() == [
        "*",
        "3",
        "FETCH",
        ["UID", "5", "BODY[HEADER.FIELDS (SUBJECT)]", b"Subject: x\n", "FLAGS", ["\\Seen"]],
    ]
