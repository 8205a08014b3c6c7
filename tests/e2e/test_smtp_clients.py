"""Real SMTP clients against a whole courriel server over loopback and TLS.

Each client submits one message as alice to bob (both local users); the test then reads bob's
INBOX through the store and checks that the message is there, byte for byte as the client sent
it, after the trace fields courriel prepends (Return-Path and Received).
"""

from __future__ import annotations

import smtplib
import subprocess
from pathlib import Path

import pytest

from courriel.testing.server import Account, MailServer, make_message
from courriel.testing.smtp import SIGNED, body_after_trace

pytestmark = pytest.mark.client

PASSWORD = "correct horse battery"


def sent_by_alice(subject: str) -> bytes:
    return make_message(subject, sender="alice@example.test")


@pytest.fixture
def bob(mail_server: MailServer) -> Account:
    mail_server.require_protocol("smtp")
    return mail_server.add_user("bob@example.test", PASSWORD)


def assert_delivered(server: MailServer, bob: Account, raw: bytes, protocol: str) -> None:
    [stored] = server.bodies(bob, "INBOX")
    names, rest = body_after_trace(stored, SIGNED)
    # Submitted mail is DKIM-signed for its From domain (Ed25519 and RSA); MX mail is not.
    signatures = [b"DKIM-Signature"] * 2 if protocol.endswith("A") else []
    assert names == [b"Return-Path", b"Received", *signatures]
    assert rest == raw
    header = stored.split(b"\r\n\r\n", 1)[0].decode()
    assert f" with {protocol} id " in header
    assert "for <bob@example.test>;" in header


def test_smtplib_submission_starttls_and_auth(
    mail_server: MailServer, mail_user: Account, bob: Account
) -> None:
    raw = sent_by_alice("smtplib over 587")
    with smtplib.SMTP(mail_server.host, mail_server.port("submission"), timeout=10) as client:
        client.starttls(context=mail_server.ssl_context())
        client.login(mail_user.address, PASSWORD)
        refused = client.sendmail(mail_user.address, [bob.address], raw)
    assert refused == {}
    assert_delivered(mail_server, bob, raw, "ESMTPSA")


def test_smtplib_submissions_implicit_tls(
    mail_server: MailServer, mail_user: Account, bob: Account
) -> None:
    raw = sent_by_alice("smtplib over 465")
    port = mail_server.port("submissions")
    ctx = mail_server.ssl_context()
    with smtplib.SMTP_SSL(mail_server.host, port, timeout=10, context=ctx) as client:
        client.login(mail_user.address, PASSWORD)
        client.sendmail(mail_user.address, [bob.address], raw)
    assert_delivered(mail_server, bob, raw, "ESMTPSA")


def test_smtplib_mx_delivery(mail_server: MailServer, bob: Account) -> None:
    raw = make_message("from another server")
    with smtplib.SMTP(mail_server.host, mail_server.port("smtp"), timeout=10) as client:
        client.ehlo("relay.example.net")
        client.sendmail("bob@example.net", [bob.address], raw)
    assert_delivered(mail_server, bob, raw, "ESMTP")


def test_swaks_starttls_and_auth(
    mail_server: MailServer, mail_user: Account, bob: Account, need_program, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    swaks = need_program("swaks")
    raw = sent_by_alice("swaks")
    message = tmp_path / "message.eml"
    # swaks ends the data with CRLF "." CRLF itself, so the file holds the message without its
    # last line end: what reaches the server is then exactly ``raw``.
    message.write_bytes(raw.removesuffix(b"\r\n"))
    result = subprocess.run(
        [swaks, "--server", mail_server.host, "--port", str(mail_server.port("submission")),
         "--tls", "--auth", "PLAIN", "--auth-user", mail_user.address,
         "--auth-password", PASSWORD, "--from", mail_user.address, "--to", bob.address,
         "--helo", "client.example", "--data", f"@{message}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert_delivered(mail_server, bob, raw, "ESMTPSA")


def test_msmtp_starttls_with_the_certificate_trusted(
    mail_server: MailServer, mail_user: Account, bob: Account, need_program, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    msmtp = need_program("msmtp")
    rc = tmp_path / "msmtprc"
    rc.write_text(
        "account default\n"
        f"host {mail_server.host}\n"
        f"port {mail_server.port('submission')}\n"
        "tls on\n"
        "tls_starttls on\n"
        f"tls_trust_file {mail_server.cert_path}\n"
        f"tls_host_override {mail_server.hostname}\n"
        "auth on\n"
        f"user {mail_user.address}\n"
        f"password {PASSWORD}\n"
        f"from {mail_user.address}\n"
        "set_date_header off\n"
        "set_msgid_header off\n"
    )
    rc.chmod(0o600)
    raw = sent_by_alice("msmtp")
    result = subprocess.run(
        [msmtp, "-C", str(rc), bob.address],
        input=raw, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert_delivered(mail_server, bob, raw, "ESMTPSA")


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_curl_submission(
    mail_server: MailServer,
    mail_user: Account,
    bob: Account,
    need_program,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    scheme: str,
) -> None:
    curl = need_program("curl")
    listener = "submission" if scheme == "smtp" else "submissions"
    raw = sent_by_alice(f"curl {scheme}")
    message = tmp_path / "message.eml"
    message.write_bytes(raw)
    url = f"{scheme}://localhost:{mail_server.port(listener)}/client.example"
    args = [curl, "--silent", "--show-error", "--max-time", "30", "--url", url]
    if scheme == "smtp":
        args.append("--ssl-reqd")  # STARTTLS or fail
    args += [
        "--cacert", str(mail_server.cert_path), "--user", f"{mail_user.address}:{PASSWORD}",
        "--mail-from", mail_user.address, "--mail-rcpt", bob.address,
        "--upload-file", str(message),
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, timeout=40, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert_delivered(mail_server, bob, raw, "ESMTPSA")


@pytest.mark.parametrize("ending", [b"\n.\n", b"\r\n.\n", b"\n.\r\n"])
def test_smuggling_through_submission_over_tls_is_refused(
    mail_server: MailServer, mail_user: Account, bob: Account, ending: bytes
) -> None:
    """SMTP smuggling (a second message hidden behind a non-CRLF end of data) over 465."""
    smuggled = (
        b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        b"From: alice@example.test\r\nSubject: smuggled\r\n\r\nhidden\r\n"
    )
    port = mail_server.port("submissions")
    with smtplib.SMTP_SSL(
        mail_server.host, port, timeout=10, context=mail_server.ssl_context()
    ) as client:
        client.login(mail_user.address, PASSWORD)
        assert client.mail(mail_user.address)[0] == 250
        assert client.rcpt(bob.address)[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(b"From: alice@example.test\r\n\r\nvisible" + ending + smuggled + b".\r\n")
        code, text = client.getreply()
        assert (code, text) == (550, b"5.6.11 bare LF/CR is not allowed: end lines with CRLF")
        assert client.noop()[0] == 250  # nothing smuggled is waiting as a command
    assert mail_server.bodies(bob, "INBOX") == []
