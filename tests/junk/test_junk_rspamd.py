"""The hand-off to Rspamd (``[junk] rspamd_url``), against Debian's Rspamd on loopback: the
envelope reaches it in the headers it reads, and its action decides INBOX or Junk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.junk.rspamd import RspamdRequest, headers, parse_reply
from courriel.testing.missing import report_missing
from courriel.testing.net import free_port
from courriel.testing.rspamd import RspamdServer, rspamd_program
from courriel.testing.smtp import greet, smtp_server

# A rule that fires on the subject, and one that reports what Rspamd learnt of the envelope.
RULES = """
rspamd_config.COURRIEL_TEST_JUNK = {
  callback = function(task)
    return (task:get_subject() or ''):find('JUNK TEST', 1, true) ~= nil
  end,
  score = 10.0,
}
rspamd_config.COURRIEL_ENVELOPE = {
  callback = function(task)
    local out = {'ip=' .. tostring(task:get_from_ip()), 'helo=' .. (task:get_helo() or '')}
    for _, a in ipairs(task:get_from('smtp') or {}) do table.insert(out, 'from=' .. a.addr) end
    for _, a in ipairs(task:get_recipients('smtp') or {}) do
      table.insert(out, 'rcpt=' .. a.addr)
    end
    return true, table.unpack(out)
  end,
  score = 0.1,
}
"""


@pytest.fixture
def rspamd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RspamdServer]:
    program = rspamd_program()
    if program is None:
        report_missing("program 'rspamd'", request.node.nodeid)
    assert program is not None
    with RspamdServer(program, tmp_path / "rspamd", RULES) as server:
        yield server


def test_request_headers_and_reply_parsing() -> None:
    request = RspamdRequest(
        "192.0.2.1", "mx.s.test", "a@s.test", ("b@o.test", "c@o.test"), "mx.o.test"
    )
    assert headers(request) == [
        ("IP", "192.0.2.1"),
        ("Helo", "mx.s.test"),
        ("Hostname", "mx.s.test"),
        ("From", "a@s.test"),
        ("MTA-Name", "mx.o.test"),
        ("Rcpt", "b@o.test"),
        ("Rcpt", "c@o.test"),
    ]
    result = parse_reply(
        b'{"score": 7.5, "required_score": 15, "action": "add header",'
        b' "symbols": {"A": {"score": 7.5, "options": ["x"]}, "B": {"score": 0}}}'
    )
    assert (result.score, result.required, result.junk) == (7.5, 15.0, True)
    assert [(r.name, r.points, r.text) for r in result.reasons] == [
        ("A", 7.5, "Rspamd symbol A (x)")
    ]
    assert not parse_reply(b'{"score": 1, "required_score": 15, "action": "no action"}').junk


async def test_rspamd_decides_inbox_or_junk(tmp_path: Path, rspamd: RspamdServer) -> None:
    sections = {"junk": {"scoring": True, "rspamd_url": rspamd.url}}
    async with smtp_server(tmp_path / "mx", sections=sections) as server:
        alice = await server.add_user("alice@example.test")
        carol = await server.add_user("carol@example.test")
        for subject in ("JUNK TEST offer", "lunch on friday"):
            c = await server.connect("smtp")
            await greet(c, "mx.sender.test")
            await c.envelope("bob@sender.test", "alice@example.test", "carol@example.test")
            await c.expect("DATA", 354)
            await c.send(f"From: bob@sender.test\r\nSubject: {subject}\r\n\r\nhi\r\n.\r\n".encode())
            assert (await c.reply())[0] == 250
            await c.close()
        for user in (alice, carol):
            junk = await server.store.get_mailbox(user, "Junk")
            inbox = await server.store.get_mailbox(user, "INBOX")
            assert junk is not None and inbox is not None
            [spam] = await server.store.list_messages(junk.id)
            [ham] = await server.store.list_messages(inbox.id)
            spam_head = (await server.store.read_message(junk.id, spam.uid)).split(b"\r\n\r\n")[0]
            ham_head = (await server.store.read_message(inbox.id, ham.uid)).split(b"\r\n\r\n")[0]
            said = " ".join(spam_head.decode().split())
            assert "X-Spam-Status: Yes, score=10.1 required=15.0" in said
            assert "COURRIEL_TEST_JUNK(+10.0)" in said
            assert "sent to Junk: add header" in said
            for seen in ("ip=127.0.0.1", "helo=mx.sender.test", "from=bob@sender.test"):
                assert seen in said
            assert "rcpt=alice@example.test" in said and "rcpt=carol@example.test" in said
            assert "X-Spam-Status: No, score=0.1 required=15.0" in " ".join(
                ham_head.decode().split()
            )


async def test_an_rspamd_that_cannot_be_reached_leaves_mail_unscored(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    sections = {"junk": {"scoring": True, "rspamd_url": f"http://127.0.0.1:{closed}"}}
    async with smtp_server(tmp_path, sections=sections) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c, "mx.sender.test")
        await c.envelope("bob@sender.test", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(b"From: bob@sender.test\r\nSubject: JUNK TEST\r\n\r\nhi\r\n.\r\n")
        assert (await c.reply())[0] == 250
        await c.close()
        [stored] = await server.inbox("alice@example.test")
    said = " ".join(stored.split(b"\r\n\r\n")[0].decode().split())
    assert "X-Spam-Status: No, score=0.0 required=5.0 tests=RSPAMD_UNAVAILABLE(+0.0)" in said
    assert f"not scored: Rspamd at http://127.0.0.1:{closed}/checkv2 cannot be reached" in said
