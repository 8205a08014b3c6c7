"""IMAP end to end with curl: list mailboxes and fetch a message, over imaps:// and STARTTLS.

curl verifies the server against ``--cacert`` (the self-signed certificate) and by name; with
``--ssl-reqd`` on an ``imap://`` URL it must upgrade with STARTTLS or give up (RFC 8314 §5).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer

pytestmark = pytest.mark.client


def _curl(curl: str, server: MailServer, account: Account, url: str, *extra: str) -> bytes:
    done = subprocess.run(
        [
            curl,
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            "--cacert",
            str(server.cert_path),
            "--user",
            f"{account.address}:{account.password}",
            *extra,
            url,
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"curl {url} failed: {done.stderr.decode(errors='replace')}"
    return done.stdout


def test_curl_imaps_lists_and_fetches_exact_bytes(
    imap_server: MailServer, mail_user: Account, need_program: Callable[[str], str]
) -> None:
    curl = need_program("curl")
    first = imap_server.make_message("first by curl")
    second = imap_server.make_message("second by curl")
    imap_server.deliver(mail_user, "INBOX", first)
    appended = imap_server.deliver(mail_user, "INBOX", second)
    base = f"imaps://localhost:{imap_server.port('imaps')}"

    listing = _curl(curl, imap_server, mail_user, base + "/").decode()
    lines = [ln for ln in listing.splitlines() if ln.startswith("* LIST ")]
    names = {ln.rsplit(" ", 1)[1].strip('"') for ln in lines}
    assert names == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}

    fetched = _curl(curl, imap_server, mail_user, f"{base}/INBOX;UID={appended.uid}")
    assert fetched == second
    # curl fetches with BODY[]: RFC 9051 §6.4.5 sets \Seen as a side effect.
    assert imap_server.messages(mail_user, "INBOX")[1].flags == {"\\Seen"}
    assert imap_server.messages(mail_user, "INBOX")[0].flags == frozenset()


def test_curl_starttls_required_fetches_a_section(
    imap_server: MailServer, mail_user: Account, need_program: Callable[[str], str]
) -> None:
    curl = need_program("curl")
    raw = imap_server.make_message("by STARTTLS", "only this body\r\n")
    appended = imap_server.deliver(mail_user, "INBOX", raw)
    base = f"imap://localhost:{imap_server.port('imap')}"

    text = _curl(
        curl, imap_server, mail_user, f"{base}/INBOX;UID={appended.uid};SECTION=TEXT", "--ssl-reqd"
    )
    assert text == b"only this body\r\n"
    header = _curl(
        curl,
        imap_server,
        mail_user,
        f"{base}/INBOX;UID={appended.uid};SECTION=HEADER.FIELDS%20(SUBJECT)",
        "--ssl-reqd",
    )
    assert header == b"Subject: by STARTTLS\r\n\r\n"  # RFC 9051 §6.4.5 HEADER.FIELDS


def test_curl_refuses_a_certificate_it_was_not_told_to_trust(
    mail_server: MailServer, need_program: Callable[[str], str]
) -> None:
    curl = need_program("curl")
    url = f"imaps://localhost:{mail_server.port('imaps')}/"
    done = subprocess.run(
        [curl, "--silent", "--max-time", "10", url],
        capture_output=True,
        timeout=20,
        check=False,
    )
    # 60: peer certificate cannot be authenticated with known CA certificates.
    assert done.returncode == 60
