"""POP3 end to end with Python's poplib over real sockets and TLS: 995 and 110 with STLS."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import poplib
from pathlib import Path

import pytest

from courriel.store.base import ChangeKind
from courriel.testing.pop3 import DOTTY, HOSTNAME, PASSWORD, Server, message, pop3_server

TIMEOUT = 10


def _pop3s(srv: Server) -> poplib.POP3_SSL:
    # The self-signed certificate also names 127.0.0.1, so the name check stays on.
    return poplib.POP3_SSL("127.0.0.1", srv.pop3s, timeout=TIMEOUT, context=srv.client_context())


def _pop3_stls(srv: Server) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", srv.pop3, timeout=TIMEOUT)
    client.stls(srv.client_context())
    return client


def _retrieve_all(client: poplib.POP3, user: str, quit_: bool = True) -> list[bytes]:
    client.user(user)
    client.pass_(PASSWORD)
    count, _ = client.stat()
    messages = []
    for n in range(1, count + 1):
        _, lines, _ = client.retr(n)
        messages.append(b"\r\n".join(lines) + b"\r\n")
    if quit_:
        client.quit()
    return messages


async def test_pop3s_retrieves_messages_byte_identical(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user("alice@example.test")
        sent = [message("first"), DOTTY, message("third", ("x" * 900 + "\r\n") * 200)]
        await srv.deliver(alice, *sent)

        def fetch() -> tuple[bytes, list[bytes], list[bytes]]:
            client = _pop3s(srv)
            caps = client.capa()
            assert "STLS" not in caps  # RFC 2595 §4: not offered once TLS is active
            got = _retrieve_all(client, "alice@example.test", quit_=False)
            uidl = client.uidl()[1]
            client.quit()
            return client.welcome, got, uidl

        welcome, got, uidl = await asyncio.to_thread(fetch)
    assert welcome.startswith(b"+OK")
    # poplib undoes the byte-stuffing and drops the CRLFs; put them back to compare.
    assert got == sent
    assert len(uidl) == 3 and len({line.split()[1] for line in uidl}) == 3


async def test_stls_then_login_and_delete_reaches_store_subscribers(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user("alice@example.test")
        appended = await srv.deliver(alice, message("one"), message("two"))
        sub = await srv.store.events.subscribe(alice.id)

        def delete_first() -> tuple[bytes, dict[str, list[str]]]:
            client = _pop3_stls(srv)
            caps = client.capa()
            client.user("alice@example.test")
            client.pass_(PASSWORD)
            client.dele(1)
            return client.quit(), caps

        bye, caps = await asyncio.to_thread(delete_first)
        assert bye.startswith(b"+OK")
        assert "USER" in caps and "STLS" not in caps
        async with asyncio.timeout(5):
            change = await anext(aiter(sub))
        await sub.close()
        inbox = await srv.store.get_mailbox(alice.id, "INBOX")
        assert inbox is not None
        left = [m.uid for m in await srv.store.list_messages(inbox.id)]
    assert change.kind is ChangeKind.EXPUNGED
    assert change.uids == (appended[0].uid,)
    assert left == [appended[1].uid]


async def test_user_pass_refused_on_110_before_stls(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        await srv.add_user("alice@example.test")

        def try_cleartext() -> str:
            client = poplib.POP3("127.0.0.1", srv.pop3, timeout=TIMEOUT)
            try:
                client.user("alice@example.test")
            except poplib.error_proto as e:
                return str(e.args[0], "ascii")
            finally:
                client.quit()
            return "accepted"

        reply = await asyncio.to_thread(try_cleartext)
    assert reply.startswith("-ERR [AUTH] ")
    assert "STLS" in reply


async def test_wrong_password_is_auth_error_and_session_goes_on(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user("alice@example.test")
        await srv.deliver(alice, message("one"))

        def attempt() -> tuple[str, int]:
            client = _pop3s(srv)
            client.user("alice@example.test")
            with pytest.raises(poplib.error_proto) as failed:
                client.pass_("wrong")
            client.user("alice@example.test")
            client.pass_(PASSWORD)
            count = client.stat()[0]
            client.quit()
            return str(failed.value.args[0], "ascii"), count

        reply, count = await asyncio.to_thread(attempt)
    assert reply.startswith("-ERR [AUTH] ")
    assert count == 1


async def test_stls_with_pipelined_command_discards_it_and_negotiates(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.pop3)
        async with asyncio.timeout(5):
            await reader.readline()
            writer.write(b"STLS\r\nCAPA\r\n")  # RFC 2595 §4: CAPA must never be read
            assert await reader.readline() == b"+OK begin TLS negotiation\r\n"
            await writer.start_tls(srv.client_context(), server_hostname=HOSTNAME)
            writer.write(b"USER alice@example.test\r\n")
            # The first line inside TLS answers USER: the CAPA sent in clear was never run.
            assert await reader.readline() == b"+OK send PASS\r\n"
            writer.write(b"QUIT\r\n")
            assert await reader.readline() == b"+OK courriel POP3 server signing off\r\n"
            assert await reader.read() == b""
        writer.close()


async def test_pop3_deletion_reaches_an_imap_idle_session(tmp_path: Path) -> None:
    # RFC 2177 / RFC 9051 §7.5.1: the IMAP session, idling on INBOX, is told of the POP3
    # deletion as an EXPUNGE through the store's change events.
    async with pop3_server(tmp_path, imaps=True) as srv:
        alice = await srv.add_user("alice@example.test")
        await srv.deliver(alice, message("one"), message("two"))
        imap = await asyncio.to_thread(
            imaplib.IMAP4_SSL, "127.0.0.1", srv.imaps, ssl_context=srv.client_context(), timeout=10
        )
        try:
            await asyncio.to_thread(imap.login, "alice@example.test", PASSWORD)
            status, data = await asyncio.to_thread(imap.select, "INBOX")
            assert status == "OK" and data == [b"2"]
            imap.send(b"i1 IDLE\r\n")
            continuation = await asyncio.to_thread(imap.readline)
            assert continuation.startswith(b"+")

            def delete_second() -> bytes:
                client = _pop3s(srv)
                client.user("alice@example.test")
                client.pass_(PASSWORD)
                client.dele(2)
                return client.quit()

            assert (await asyncio.to_thread(delete_second)).startswith(b"+OK")
            imap.sock.settimeout(5)
            untagged = await asyncio.to_thread(imap.readline)
            imap.send(b"DONE\r\n")
            done = await asyncio.to_thread(imap.readline)
            await asyncio.to_thread(imap.logout)
        finally:
            with contextlib.suppress(OSError):  # already closed by LOGOUT
                imap.shutdown()
    assert untagged == b"* 2 EXPUNGE\r\n"
    assert done.startswith(b"i1 OK")
