"""The POP3 session over the sans-IO core and a real SQLite store, without sockets.

``Dialogue`` plays the adapter's part: it feeds client lines to the core, hands each event to
the session and collects the replies, so every test reads as the conversation it checks.
"""

from __future__ import annotations

import base64
import random
import re
from pathlib import Path

import pytest

from courriel.accounts.authcache import AuthCache
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.passwords import PasswordHasher
from courriel.accounts.ratelimit import MAX_SESSION_FAILURES, AuthLimiter
from courriel.clock import SYSTEM_CLOCK, Clock, ManualClock
from courriel.config import AuthConfig
from courriel.session.pop3 import Pop3Session
from courriel.session.pop3_maildrop import unique_id
from courriel.store.base import Store, User
from courriel.store.sqlite import open_sqlite
from courriel.testing.fill import deliver_to_inbox
from courriel.wire.errors import ProtocolError
from courriel.wire.pop3 import commands as c
from courriel.wire.pop3.core import Pop3Config, Pop3Connection, State

PASSWORD = "s3cret pass"


@pytest.fixture
async def alice(store: Store, hasher: PasswordHasher) -> User:
    await store.add_domain("example.test")
    return await store.add_user("alice@example.test", hasher.hash(PASSWORD))


def msg(subject: str, body: str = "Body line.\r\n") -> bytes:
    return f"From: b@example.net\r\nSubject: {subject}\r\n\r\n{body}".encode()


class Dialogue:
    def __init__(
        self,
        store: Store,
        hasher: PasswordHasher,
        *,
        auth: AuthConfig | None = None,
        lease_seconds: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.conn = Pop3Connection(Pop3Config(tls_active=True, stls_offered=False))
        limiter = AuthLimiter(store, auth or AuthConfig(failure_delay_seconds=0))
        authenticator = Authenticator(store, hasher, AuthCache(0))
        self.session = Pop3Session(
            self.conn,
            store,
            authenticator,
            limiter,
            "192.0.2.7",
            lease_seconds=lease_seconds,
            clock=clock,
        )

    async def say(self, line: str) -> bytes:
        """The server's whole answer to one client line."""
        self.conn.receive_data(line.encode() + b"\r\n")
        out = []
        while True:
            try:
                event = self.conn.next_event()
            except ProtocolError as e:
                out.append(e.reply)
                continue
            if isinstance(event, c.NeedData | c.Paused):
                return b"".join(out)
            assert not isinstance(event, c.Stls)
            out.append(await self.session.handle(event))

    async def login(self) -> bytes:
        await self.say("USER alice@example.test")
        return await self.say(f"PASS {PASSWORD}")


async def test_login_snapshot_stat_list_uidl(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    raws = [msg("one"), msg("two", "x\r\n" * 10)]
    appended = await deliver_to_inbox(store, alice, *raws)
    d = Dialogue(store, hasher)
    assert await d.login() == b"+OK maildrop has 2 messages (%d octets)\r\n" % sum(map(len, raws))
    assert d.conn.state is State.TRANSACTION
    assert await d.say("STAT") == b"+OK 2 %d\r\n" % sum(map(len, raws))
    assert await d.say("LIST 2") == b"+OK 2 %d\r\n" % len(raws[1])
    ids = [unique_id(a.uidvalidity, a.uid) for a in appended]
    assert await d.say("UIDL") == (
        b"+OK unique-id listing follows\r\n1 %s\r\n2 %s\r\n.\r\n"
        % (ids[0].encode(), ids[1].encode())
    )
    await d.session.close()


async def test_new_mail_during_the_session_is_not_shown(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    await deliver_to_inbox(store, alice, msg("one"))
    d = Dialogue(store, hasher)
    await d.login()
    await deliver_to_inbox(store, alice, msg("late"))
    assert (await d.say("STAT")).startswith(b"+OK 1 ")  # RFC 1939: numbering fixed at login
    assert await d.say("RETR 2") == b"-ERR no such message\r\n"
    await d.session.close()


async def test_dele_marks_rset_unmarks_and_quit_expunges_once(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    appended = await deliver_to_inbox(store, alice, msg("one"), msg("two"), msg("three"))
    d = Dialogue(store, hasher)
    await d.login()
    assert await d.say("DELE 1") == b"+OK message 1 deleted\r\n"
    assert await d.say("DELE 1") == b"-ERR message 1 already deleted\r\n"
    assert await d.say("RETR 1") == b"-ERR message 1 already deleted\r\n"
    assert (await d.say("STAT")).startswith(b"+OK 2 ")
    assert (await d.say("RSET")).startswith(b"+OK maildrop has 3 messages")
    await d.say("DELE 2")
    await d.say("DELE 3")
    assert b"\r\n1 " in await d.say("LIST") and b"\r\n2 " not in await d.say("LIST")
    inbox = await store.get_mailbox(alice.id, "INBOX")
    assert inbox is not None
    assert len(await store.list_messages(inbox.id)) == 3  # nothing removed before QUIT
    assert await d.say("QUIT") == b"+OK courriel POP3 server signing off\r\n"
    assert [m.uid for m in await store.list_messages(inbox.id)] == [appended[0].uid]
    await d.session.close()


async def test_message_expunged_elsewhere_answers_err_and_quit_still_works(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    appended = await deliver_to_inbox(store, alice, msg("one"), msg("two"))
    d = Dialogue(store, hasher)
    await d.login()
    await store.expunge(appended[0].mailbox_id, [appended[0].uid])  # as IMAP would
    assert await d.say("RETR 1") == b"-ERR message 1 was removed by another session\r\n"
    assert await d.say("TOP 1 0") == b"-ERR message 1 was removed by another session\r\n"
    await d.say("DELE 1")
    await d.say("DELE 2")
    assert (await d.say("QUIT")).startswith(b"+OK")
    assert await store.list_messages(appended[0].mailbox_id) == []
    await d.session.close()


async def test_top_sends_header_and_n_body_lines(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    raw = msg("top", "l1\r\n.l2\r\nl3\r\n")
    await deliver_to_inbox(store, alice, raw)
    d = Dialogue(store, hasher)
    await d.login()
    head = b"From: b@example.net\r\nSubject: top\r\n\r\n"
    assert (
        await d.say("TOP 1 2") == b"+OK top of message follows\r\n" + head + b"l1\r\n..l2\r\n.\r\n"
    )
    assert await d.say("RETR 1") == b"+OK %d octets\r\n" % len(raw) + head + (
        b"l1\r\n..l2\r\nl3\r\n.\r\n"
    )
    await d.session.close()


async def test_wrong_password_then_right_one(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    d = Dialogue(store, hasher)
    await d.say("USER alice@example.test")
    assert await d.say("PASS nope") == b"-ERR [AUTH] authentication failed\r\n"
    await d.say("USER nobody@example.test")
    assert await d.say(f"PASS {PASSWORD}") == b"-ERR [AUTH] authentication failed\r\n"
    assert d.conn.state is State.AUTHORIZATION
    assert (await d.login()).startswith(b"+OK maildrop has 0 messages")
    await d.session.close()


async def test_limiter_refuses_without_checking_the_password(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    auth = AuthConfig(failure_delay_seconds=0, max_failures_per_ip=2)
    d = Dialogue(store, hasher, auth=auth)
    for _ in range(2):
        await d.say("USER alice@example.test")
        assert (await d.say("PASS bad")).startswith(b"-ERR [AUTH]")
    await d.say("USER alice@example.test")
    # Even the right password is refused now: the check is skipped (RFC 3206 §4, SYS/TEMP).
    refused = await d.say(f"PASS {PASSWORD}")
    assert re.fullmatch(
        rb"-ERR \[SYS/TEMP\] Too many failed logins from your address; "
        rb"try again in [1-5] minutes?\r\n",
        refused,
    )
    assert d.conn.state is State.AUTHORIZATION


async def test_ten_failed_logins_in_a_row_close_the_session(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    auth = AuthConfig(failure_delay_seconds=0, max_failures_per_ip=0, max_failures_per_account=0)
    d = Dialogue(store, hasher, auth=auth)
    for _ in range(MAX_SESSION_FAILURES - 1):
        await d.say("USER alice@example.test")
        assert await d.say("PASS bad") == b"-ERR [AUTH] authentication failed\r\n"
    await d.say("USER alice@example.test")
    assert await d.say("PASS bad") == (
        b"-ERR [AUTH] authentication failed; too many failed logins, closing the connection\r\n"
    )
    assert d.conn.state is State.CLOSED


async def test_sasl_plain_with_initial_response_and_login_with_challenges(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    plain = base64.b64encode(f"\0alice@example.test\0{PASSWORD}".encode()).decode()
    d = Dialogue(store, hasher)
    assert (await d.say(f"AUTH PLAIN {plain}")).startswith(b"+OK maildrop has 0")
    await d.session.close()

    d = Dialogue(store, hasher)
    assert await d.say("AUTH LOGIN") == b"+ VXNlcm5hbWU6\r\n"  # "Username:"
    assert await d.say(base64.b64encode(b"alice@example.test").decode()) == b"+ UGFzc3dvcmQ6\r\n"
    assert (await d.say(base64.b64encode(PASSWORD.encode()).decode())).startswith(b"+OK")
    await d.session.close()


async def test_sasl_cancel_and_bad_credentials(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    d = Dialogue(store, hasher)
    assert await d.say("AUTH PLAIN") == b"+ \r\n"
    assert await d.say("*") == b"-ERR authentication cancelled\r\n"
    assert await d.say("AUTH PLAIN AGFsaWNlAA==") == b"-ERR [AUTH] authentication failed\r\n"
    assert d.conn.state is State.AUTHORIZATION


async def test_second_session_is_in_use_until_the_first_closes(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    first, second = Dialogue(store, hasher), Dialogue(store, hasher)
    assert (await first.login()).startswith(b"+OK")
    assert await second.login() == b"-ERR [IN-USE] maildrop already locked\r\n"
    assert second.conn.state is State.AUTHORIZATION
    await first.session.close()  # however the first one ended, its lease is released
    assert (await second.login()).startswith(b"+OK")
    await second.session.close()


@pytest.mark.parametrize("marked", [False, True])
async def test_quit_releases_the_maildrop_before_its_ok(
    store: Store, hasher: PasswordHasher, alice: User, marked: bool
) -> None:
    # The adapter closes the session only after the +OK is written; a client that logs in
    # again the moment it reads that +OK must find the maildrop free already.
    await deliver_to_inbox(store, alice, msg("one"))
    first = Dialogue(store, hasher)
    await first.login()
    if marked:
        await first.say("DELE 1")
    assert (await first.say("QUIT")).startswith(b"+OK")
    assert first.session.lock is None
    second = Dialogue(store, hasher)
    assert (await second.login()).startswith(b"+OK")
    await second.session.close()
    await first.session.close()  # the adapter's close after the reply finds nothing to do


async def test_store_unavailable_is_sys_temp_and_the_session_goes_on(
    tmp_path: Path, hasher: PasswordHasher
) -> None:
    store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    await store.add_domain("example.test")
    user = await store.add_user("alice@example.test", hasher.hash(PASSWORD))
    await deliver_to_inbox(store, user, msg("one"))
    d = Dialogue(store, hasher)
    await d.login()
    await store.close()  # the database is gone from under the session
    assert await d.say("RETR 1") == b"-ERR [SYS/TEMP] temporary failure; try again later\r\n"
    assert await d.say("NOOP") == b"+OK\r\n"
    await d.say("DELE 1")
    assert await d.say("QUIT") == b"-ERR [SYS/TEMP] some deleted messages were not removed\r\n"
    await d.session.close()  # must not raise although the store is closed


async def test_quit_after_the_lock_was_lost_deletes_nothing(
    store: Store, hasher: PasswordHasher, alice: User
) -> None:
    appended = await deliver_to_inbox(store, alice, msg("one"))
    clock = ManualClock()  # paces the lock's renewals (every 20 s for a 60 s lease)
    d = Dialogue(store, hasher, lease_seconds=60, clock=clock)
    await d.login()
    await d.say("DELE 1")
    lock = d.session.lock
    assert lock is not None
    await clock.wait_for_sleepers(1)
    # This session stalled past its lease and another one took the maildrop meanwhile.
    await store.release_lease(lock.name, lock.owner)
    assert await store.acquire_lease(lock.name, "other-session", 60)
    await clock.advance(20)  # the next renewal finds the lease gone
    assert lock.lost
    assert await d.say("QUIT") == b"-ERR [IN-USE] maildrop lock lost; nothing was deleted\r\n"
    assert len(await store.list_messages(appended[0].mailbox_id)) == 1
    await d.session.close()
    assert not await store.acquire_lease(lock.name, "third-session", 60)  # still the other's


@pytest.mark.parametrize("seed", range(4))
async def test_random_dele_rset_sequences_match_a_model(
    store: Store, hasher: PasswordHasher, alice: User, seed: int
) -> None:
    # RFC 1939 §5: STAT and LIST count only unmarked messages; DELE of a marked or missing
    # number fails; RSET unmarks all. A plain set is the model the session must agree with.
    rng = random.Random(seed)
    raws = [msg(f"m{i}", "x\r\n" * rng.randint(0, 20)) for i in range(6)]
    await deliver_to_inbox(store, alice, *raws)
    d = Dialogue(store, hasher)
    await d.login()
    marked: set[int] = set()
    for _ in range(40):
        n = rng.randint(1, 8)
        op = rng.choice(["DELE", "DELE", "RSET", "STAT", "LIST"])
        reply = await d.say(f"{op} {n}" if op in ("DELE", "LIST") else op)
        live = [i for i in range(1, 7) if i not in marked]
        if op == "DELE" or op == "LIST":
            if n > 6:
                assert reply == b"-ERR no such message\r\n"
            elif n in marked:
                assert reply == b"-ERR message %d already deleted\r\n" % n
            elif op == "DELE":
                assert reply == b"+OK message %d deleted\r\n" % n
                marked.add(n)
            else:
                assert reply == b"+OK %d %d\r\n" % (n, len(raws[n - 1]))
        elif op == "RSET":
            marked.clear()
            assert reply.startswith(b"+OK maildrop has 6 messages")
        else:
            size = sum(len(raws[i - 1]) for i in live)
            assert reply == b"+OK %d %d\r\n" % (len(live), size)
    assert (await d.say("QUIT")).startswith(b"+OK")
    inbox = await store.get_mailbox(alice.id, "INBOX")
    assert inbox is not None
    assert len(await store.list_messages(inbox.id)) == 6 - len(marked)
    await d.session.close()
