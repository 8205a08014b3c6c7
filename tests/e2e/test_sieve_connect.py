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
