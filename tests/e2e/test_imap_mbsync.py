"""IMAP end to end with mbsync (isync): a two-way sync of a folder tree with a local Maildir.

The test makes folders and messages on both sides, syncs, changes flags and deletes on both
sides, syncs again, and checks the server through the store and the client through its Maildir.
Maildir flags are the letters after ``:2,`` in a file name (D draft, F flagged, R replied,
S seen, T trashed); mbsync writes local files with LF line ends, so bodies are compared so.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from courriel.store.base import FlagOp

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer

pytestmark = pytest.mark.client

SYNC_TIMEOUT = 60


def _rc(server: MailServer, account: Account, maildir: Path) -> str:
    # The empty special-use folders are left out: each new local Maildir costs mbsync a pause of
    # a second, and they add nothing a nested folder does not test.
    return f"""\
IMAPAccount courriel
Host localhost
Port {server.port("imaps")}
User {account.address}
Pass "{account.password}"
SSLType IMAPS
CertificateFile {server.cert_path}

IMAPStore remote
Account courriel

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel everything
Far :remote:
Near :local:
Patterns * !Sent !Drafts !Trash !Junk !Archive
Create Both
Expunge Both
SyncState *
"""


def _sync(mbsync: str, rc: Path) -> None:
    done = subprocess.run(
        [mbsync, "-c", str(rc), "-a"],
        capture_output=True,
        text=True,
        timeout=SYNC_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"mbsync failed:\n{done.stdout}\n{done.stderr}"


def _local(folder: Path) -> dict[bytes, str]:
    """Subject line -> Maildir flag letters, for every message file of a Maildir folder."""
    found: dict[bytes, str] = {}
    for sub in ("new", "cur"):
        for f in (folder / sub).iterdir():
            found[_subject(f.read_bytes())] = f.name.partition(":2,")[2]
    return found


def _local_file(folder: Path, subject: bytes) -> Path:
    for sub in ("new", "cur"):
        for f in (folder / sub).iterdir():
            if b"Subject: " + subject + b"\n" in f.read_bytes():
                return f
    raise AssertionError(f"no local message {subject!r} in {folder}")


def _write_local(folder: Path, name: str, data: bytes) -> None:
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "cur" / name).write_bytes(data)


def _without_tuid(data: bytes) -> bytes:
    """The message without the X-TUID field mbsync adds to find what it propagated."""
    lines = data.split(b"\n")
    return b"\n".join(ln for ln in lines if not ln.startswith(b"X-TUID: "))


def _subject(raw: bytes) -> bytes:
    line = next(ln for ln in raw.splitlines() if ln.startswith(b"Subject: "))
    return line[len(b"Subject: ") :]


def _uid_of(server: MailServer, account: Account, mailbox: str, subject: bytes) -> int:
    for info in server.messages(account, mailbox):
        if _subject(server.read(account, mailbox, info.uid)) == subject:
            return info.uid
    raise AssertionError(f"no message {subject!r} in {mailbox} on the server")


def _subjects_and_flags(
    server: MailServer, account: Account, mailbox: str
) -> dict[bytes, set[str]]:
    return {
        _subject(server.read(account, mailbox, info.uid)): set(info.flags)
        for info in server.messages(account, mailbox)
    }


def test_mbsync_two_way_sync_of_a_folder_tree(
    imap_server: MailServer, mail_user: Account, tmp_path: Path, need_program: Callable[[str], str]
) -> None:
    mbsync = need_program("mbsync")
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(_rc(imap_server, mail_user, maildir))

    # Server side: two messages in INBOX (one seen), one in a nested folder.
    server_a = imap_server.make_message("server-a")
    imap_server.deliver(mail_user, "INBOX", server_a, ["\\Seen"])
    imap_server.deliver(mail_user, "INBOX", imap_server.make_message("server-b"))
    imap_server.call(imap_server.store.create_mailbox(mail_user.user_id, "Projects"))
    imap_server.call(imap_server.store.create_mailbox(mail_user.user_id, "Projects/Alpha"))
    imap_server.deliver(mail_user, "Projects/Alpha", imap_server.make_message("alpha-1"))
    # Client side: a new folder with a flagged message, and a new message in INBOX.
    local_note = imap_server.make_message("local-note").replace(b"\r\n", b"\n")
    _write_local(maildir / "Notes", "1700000000.1.host:2,F", local_note)
    local_in = imap_server.make_message("local-in").replace(b"\r\n", b"\n")
    _write_local(maildir / "INBOX", "1700000000.2.host:2,", local_in)

    _sync(mbsync, rc)

    assert _local(maildir / "INBOX") == {b"server-a": "S", b"server-b": "", b"local-in": ""}
    assert _local(maildir / "Projects" / "Alpha") == {b"alpha-1": ""}
    local_a = _without_tuid(_local_file(maildir / "INBOX", b"server-a").read_bytes())
    assert local_a == server_a.replace(b"\r\n", b"\n")
    assert {"Notes", "Projects", "Projects/Alpha"} <= set(imap_server.mailbox_names(mail_user))
    assert _subjects_and_flags(imap_server, mail_user, "Notes") == {b"local-note": {"\\Flagged"}}
    [uploaded] = imap_server.bodies(mail_user, "Notes")
    # RFC 9051 §6.3.12: the appended message is stored as sent (CRLF on the wire).
    assert _without_tuid(uploaded.replace(b"\r\n", b"\n")) == local_note
    assert set(_subjects_and_flags(imap_server, mail_user, "INBOX")) == {
        b"server-a",
        b"server-b",
        b"local-in",
    }

    # Second round. Server: flag server-b, delete alpha-1. Client: mark local-note seen,
    # delete server-a.
    inbox = imap_server.mailbox(mail_user, "INBOX")
    server_b = _uid_of(imap_server, mail_user, "INBOX", b"server-b")
    flagged = frozenset({"\\Flagged"})
    imap_server.call(imap_server.store.store_flags(inbox.id, [server_b], FlagOp.ADD, flagged))
    alpha = imap_server.mailbox(mail_user, "Projects/Alpha")
    [alpha_1] = imap_server.messages(mail_user, "Projects/Alpha")
    imap_server.call(imap_server.store.expunge(alpha.id, [alpha_1.uid]))
    note = _local_file(maildir / "Notes", b"local-note")
    note.rename(note.with_name(note.name.partition(":2,")[0] + ":2,FS"))
    _local_file(maildir / "INBOX", b"server-a").unlink()

    _sync(mbsync, rc)

    assert _local(maildir / "INBOX") == {b"server-b": "F", b"local-in": ""}
    assert _local(maildir / "Projects" / "Alpha") == {}
    assert _subjects_and_flags(imap_server, mail_user, "INBOX") == {
        b"server-b": {"\\Flagged"},
        b"local-in": set(),
    }
    assert _subjects_and_flags(imap_server, mail_user, "Notes") == {
        b"local-note": {"\\Flagged", "\\Seen"}
    }
