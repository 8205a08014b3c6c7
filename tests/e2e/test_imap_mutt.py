"""IMAP end to end with mutt, driven in batch through its own key bindings.

mutt is a full-screen program: it is run on a pseudo-terminal (which it needs for curses) with
``-e 'push ...'`` so it performs the keystrokes given and quits by itself. It trusts the server
because the certificate is in its ``certificate_file`` and checks the host name
(``ssl_verify_host``). What it did is read back from the store.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer

pytestmark = pytest.mark.client

MUTT_TIMEOUT = 30.0


def _muttrc(server: MailServer, account: Account, tmp_path: Path) -> Path:
    trusted = tmp_path / "mutt_certificates"
    trusted.write_bytes(server.cert_path.read_bytes())
    rc = tmp_path / "muttrc"
    rc.write_text(
        f"""\
set imap_user = "{account.address}"
set imap_pass = "{account.password}"
set folder = "imaps://localhost:{server.port("imaps")}/"
set spoolfile = "+INBOX"
set certificate_file = "{trusted}"
set ssl_verify_host = yes
set ssl_force_tls = yes
set header_cache = ""
set message_cachedir = ""
set mail_check = 60
set timeout = 5
set imap_idle = no
set sort = mailbox-order
set confirmappend = no
set confirmcreate = no
set delete = yes
set move = no
set quit = yes
set wait_key = no
set beep = no
"""
    )
    return rc


def _run_mutt(mutt: str, rc: Path, home: Path, keys: str) -> str:
    """Runs mutt on a pseudo-terminal until it exits; returns what it drew (for failures)."""
    master, slave = pty.openpty()
    env = {"HOME": str(home), "TERM": "vt100", "PATH": os.environ.get("PATH", "/usr/bin")}
    proc = subprocess.Popen(
        [mutt, "-n", "-F", str(rc), "-e", f"push '{keys}'"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    screen = bytearray()
    deadline = time.monotonic() + MUTT_TIMEOUT
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:  # the terminal closed: mutt has exited
                    break
        proc.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"mutt did not finish: {screen.decode(errors='replace')}") from None
    finally:
        os.close(master)
    text = screen.decode(errors="replace")
    assert proc.returncode == 0, f"mutt exited with {proc.returncode}: {text}"
    return text


def test_mutt_flags_and_moves_messages(
    imap_server: MailServer, mail_user: Account, tmp_path: Path, need_program: Callable[[str], str]
) -> None:
    mutt = need_program("mutt")
    keep = imap_server.make_message("keep and flag")
    move = imap_server.make_message("move to archive")
    imap_server.deliver(mail_user, "INBOX", keep)
    imap_server.deliver(mail_user, "INBOX", move)
    rc = _muttrc(imap_server, mail_user, tmp_path)

    # Flag the first message; save the second into Archive (a save deletes the original when
    # delete=yes); then sync the mailbox and quit.
    keys = (
        "<first-entry><flag-message><next-undeleted>"
        "<save-message>=Archive<enter><sync-mailbox><quit>"
    )
    screen = _run_mutt(mutt, rc, tmp_path, keys)

    infos = imap_server.messages(mail_user, "INBOX")
    assert imap_server.bodies(mail_user, "INBOX") == [keep], screen
    assert "\\Flagged" in infos[0].flags
    assert imap_server.bodies(mail_user, "Archive") == [move]
