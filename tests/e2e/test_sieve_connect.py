"""Sieve end to end: Debian's sieve-connect uploads and activates a script over ManageSieve
(STARTTLS, SASL PLAIN, the server's certificate verified), then mail arriving on port 25 is
filed as the script says, and read back over IMAP."""

from __future__ import annotations

import imaplib
import smtplib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer

pytestmark = pytest.mark.client

SCRIPT = """\
require ["fileinto", "mailbox", "imap4flags"];
# Everything from the bank goes to Invoices, flagged.
if address :is :domain "from" "bank.example" {
    fileinto :create :flags "\\\\Flagged" "Invoices";
    stop;
}
"""


def _sieve_connect(
    program: str, server: MailServer, account: Account, *args: str
) -> subprocess.CompletedProcess[str]:
    command = [
        program,
        "--nosrv",
        "--server",
        server.host,
        "--port",
        str(server.port("sieve")),
        "--tlshostname",
        server.hostname,
        "--tlscafile",
        str(server.cert_path),
        "--user",
        account.address,
        "--authmech",
        "PLAIN",
        "--passwordfd",
        "0",
        *args,
    ]
    return subprocess.run(
        command, input=account.password + "\n", capture_output=True, text=True, timeout=30
    )


def test_sieve_connect_uploads_activates_and_delivery_files(
    mail_server: MailServer,
    mail_user: Account,
    need_program: Callable[[str], str],
    tmp_path: Path,
) -> None:
    program = need_program("sieve-connect")
    local = tmp_path / "filters.sieve"
    local.write_text(SCRIPT)
    done = _sieve_connect(
        program,
        mail_server,
        mail_user,
        "--upload",
        "--localsieve",
        str(local),
        "--remotesieve",
        "filters",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = _sieve_connect(program, mail_server, mail_user, "--activate", "--remotesieve", "filters")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = _sieve_connect(program, mail_server, mail_user, "--list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout.splitlines() == ['"filters" ACTIVE']
    fetched = tmp_path / "fetched.sieve"
    done = _sieve_connect(
        program,
        mail_server,
        mail_user,
        "--download",
        "--remotesieve",
        "filters",
        "--localsieve",
        str(fetched),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert fetched.read_text() == SCRIPT

    bank = mail_server.make_message("Invoice 2026-11", sender="billing@bank.example")
    other = mail_server.make_message("Lunch?", sender="carol@example.net")
    with smtplib.SMTP(mail_server.host, mail_server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("billing@bank.example", [mail_user.address], bank)
        smtp.sendmail("carol@example.net", [mail_user.address], other)

    with imaplib.IMAP4_SSL(
        mail_server.host, mail_server.port("imaps"), ssl_context=_context(mail_server)
    ) as imap:
        imap.login(mail_user.address, mail_user.password)
        typ, _ = imap.select("Invoices", readonly=True)
        assert typ == "OK"
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        fetched = b"".join(b"".join(part) if isinstance(part, tuple) else part for part in data)
        assert b"Subject: Invoice 2026-11" in fetched
        assert b"\\Flagged" in fetched
        assert b"Lunch?" not in fetched
        imap.select("INBOX", readonly=True)
        typ, data = imap.search(None, "ALL")
        assert len(data[0].split()) == 1  # only the other message stayed in INBOX
        typ, data = imap.fetch(data[0].split()[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Lunch?" in data[0][1]


def _context(server: MailServer):  # type: ignore[no-untyped-def]
    context = server.ssl_context()
    context.check_hostname = False  # the test connects to 127.0.0.1; the chain is still checked
    return context


def test_vacation_answers_a_local_sender_once(mail_server: MailServer, mail_user: Account) -> None:
    bob = mail_server.add_user("bob@example.test", "bob's long password")
    script = 'require "vacation"; vacation :days 2 :subject "Out of office" "Back on Monday.";'
    mail_server.call(mail_server.store.put_sieve_script(mail_user.user_id, "away", script))
    mail_server.call(mail_server.store.activate_sieve_script(mail_user.user_id, "away"))
    context = _context(mail_server)
    with smtplib.SMTP(mail_server.host, mail_server.port("submission"), timeout=10) as smtp:
        smtp.starttls(context=context)
        smtp.login(bob.address, bob.password)
        for subject in ("First", "Second"):
            message = (
                f"From: {bob.address}\r\nTo: {mail_user.address}\r\nSubject: {subject}\r\n"
                f"Message-ID: <{subject}@example.test>\r\n\r\nHello.\r\n"
            )
            smtp.sendmail(bob.address, [mail_user.address], message.encode())
    assert len(mail_server.messages(mail_user, "INBOX")) == 2  # both kept
    [answer] = mail_server.bodies(bob, "INBOX")  # once per sender per :days (RFC 5230 §4.1)
    head = answer.split(b"\r\n\r\n")[0]
    assert head.startswith(b"Return-Path: <>\r\n")  # sent from the null sender (RFC 5230 §5)
    assert b"\r\nSubject: Out of office\r\n" in head
    assert b"\r\nAuto-Submitted: auto-replied" in head  # RFC 3834 §5
    assert b"\r\nIn-Reply-To: <First@example.test>\r\n" in head
    assert answer.endswith(b"\r\n\r\nBack on Monday.\r\n")
