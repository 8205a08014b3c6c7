"""Which IMAP actions teach the junk filter what (``courriel.junk.learn``), as a table."""

from __future__ import annotations

import pytest

from courriel.junk.learn import lesson_of_copy, lesson_of_flags
from courriel.store.base import Mailbox


def box(name: str, use: str | None = None) -> Mailbox:
    return Mailbox(1, 1, name, 1, 1, 1, use)


INBOX, ARCHIVE = box("INBOX"), box("Archive", "\\Archive")
JUNK, SPAM_NAMED, JUNK_BY_USE = box("Junk", "\\Junk"), box("Spam"), box("Pourriel", "\\Junk")
TRASH, TRASH_BY_USE = box("Trash"), box("Corbeille", "\\Trash")


@pytest.mark.parametrize(
    ("source", "target", "lesson"),
    [
        (INBOX, JUNK, True),
        (ARCHIVE, JUNK_BY_USE, True),
        (INBOX, SPAM_NAMED, True),
        (JUNK, INBOX, False),
        (JUNK, ARCHIVE, False),
        (JUNK_BY_USE, box("Lists/rust"), False),
        (JUNK, TRASH, None),  # deleting junk says nothing
        (JUNK, TRASH_BY_USE, None),
        (JUNK, SPAM_NAMED, None),  # from one junk folder to another
        (INBOX, ARCHIVE, None),
        (INBOX, TRASH, None),
    ],
)
def test_copies(source: Mailbox, target: Mailbox, lesson: bool | None) -> None:
    assert lesson_of_copy(source, target) is lesson


@pytest.mark.parametrize(
    ("flags", "lesson"),
    [
        (["$Junk"], True),
        (["\\Seen", "$JUNK"], True),
        (["Junk"], True),  # Thunderbird's older keyword
        (["$NotJunk"], False),
        (["NonJunk"], False),
        (["$Junk", "$NotJunk"], None),  # both at once: no lesson
        (["\\Flagged", "$Forwarded"], None),
        ([], None),
    ],
)
def test_keywords(flags: list[str], lesson: bool | None) -> None:
    assert lesson_of_flags(flags) is lesson
