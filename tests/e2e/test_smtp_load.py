"""Load on the inbound MX with Postfix's own generator, smtp-source: 20 parallel sessions.

Every message smtp-source sends has its own recipient (``-N`` numbers them; the domain's
catch-all takes them all), so the Received field of each stored message says which one it is:
every one must be stored exactly once.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from courriel import admin
from courriel.testing.server import Account, MailServer

pytestmark = [pytest.mark.client, pytest.mark.slow]

SESSIONS = 20
MESSAGES = 400
LENGTH = 4096


def test_smtp_source_20_sessions_every_message_stored_once(
    mail_server: MailServer,
    mail_user: Account,
    need_program,  # type: ignore[no-untyped-def]
) -> None:
    # Debian installs it in /usr/sbin, which is not on every user's PATH.
    smtp_source = shutil.which("smtp-source", path="/usr/sbin") or need_program("smtp-source")
    mail_server.require_protocol("smtp")
    mail_server.call(admin.set_catch_all(mail_server.store, "example.test", mail_user.address))
    result = subprocess.run(
        [smtp_source, "-s", str(SESSIONS), "-m", str(MESSAGES), "-l", str(LENGTH), "-N",
         "-M", "load.example.net", "-f", "load@example.net", "-t", "rcpt@example.test",
         f"{mail_server.host}:{mail_server.port('smtp')}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bodies = mail_server.bodies(mail_user, "INBOX")
    numbers = []
    for stored in bodies:
        found = re.search(rb"\tfor <(\d+)rcpt@example\.test>;", stored)
        assert found is not None, stored[:400]
        numbers.append(int(found.group(1)))
    assert len(bodies) == MESSAGES
    assert len(set(numbers)) == MESSAGES  # none twice
