"""IMAP end to end with offlineimap3: a one-shot sync of every folder to a local Maildir.

offlineimap names local folders with "." as the separator (``Projects.Alpha``) and keeps the
message bytes as fetched; the flags are the letters after ``:2,`` in each file name.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer

pytestmark = pytest.mark.client


def _rc(server: MailServer, account: Account, root: Path) -> str:
    return f"""\
[general]
accounts = courriel
metadata = {root}/state
ui = quiet

[Account courriel]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {root}/Mail

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {server.port("imaps")}
remoteuser = {account.address}
remotepass = {account.password}
ssl = yes
sslcacertfile = {server.cert_path}
"""


def _files(folder: Path) -> dict[bytes, tuple[bytes, str]]:
    """Subject -> (file bytes, Maildir flag letters) for a local Maildir folder."""
    found: dict[bytes, tuple[bytes, str]] = {}
    for sub in ("new", "cur"):
        for f in (folder / sub).iterdir():
            data = f.read_bytes()
            subject = next(ln for ln in data.splitlines() if ln.startswith(b"Subject: "))
            found[subject[len(b"Subject: ") :]] = (data, f.name.partition(":2,")[2])
    return found


def test_offlineimap_syncs_every_folder_with_bytes_and_flags(
    imap_server: MailServer, mail_user: Account, tmp_path: Path, need_program: Callable[[str], str]
) -> None:
    offlineimap = need_program("offlineimap")
    plain = imap_server.make_message("plain")
    seen = imap_server.make_message("seen and answered")
    nested = imap_server.make_message("nested")
    imap_server.deliver(mail_user, "INBOX", plain)
    imap_server.deliver(mail_user, "INBOX", seen, ["\\Seen", "\\Answered"])
    imap_server.call(imap_server.store.create_mailbox(mail_user.user_id, "Projects"))
    imap_server.call(imap_server.store.create_mailbox(mail_user.user_id, "Projects/Alpha"))
    imap_server.deliver(mail_user, "Projects/Alpha", nested, ["\\Flagged"])
    rc = tmp_path / "offlineimaprc"
    rc.write_text(_rc(imap_server, mail_user, tmp_path))

    done = subprocess.run(
        [offlineimap, "-c", str(rc), "-o", "-u", "quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"offlineimap failed:\n{done.stdout}\n{done.stderr}"
    assert "ERROR" not in done.stderr, done.stderr

    local = tmp_path / "Mail"
    folders = {p.name for p in local.iterdir() if p.is_dir()}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive", "Projects.Alpha"} <= folders
    # offlineimap keeps local files with the platform's line ends.
    plain, seen, nested = (m.replace(b"\r\n", b"\n") for m in (plain, seen, nested))
    inbox = _files(local / "INBOX")
    assert inbox == {b"plain": (plain, ""), b"seen and answered": (seen, "RS")}
    assert _files(local / "Projects.Alpha") == {b"nested": (nested, "F")}
    assert _files(local / "Sent") == {}
    # A one-way read: nothing came back to the server, no flag was changed by the download.
    assert [m.flags for m in imap_server.messages(mail_user, "INBOX")] == [
        frozenset(),
        frozenset({"\\Seen", "\\Answered"}),
    ]
