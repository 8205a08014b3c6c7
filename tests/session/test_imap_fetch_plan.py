"""FETCH plans: what each request needs, implicit \\Seen, and the items added (RFC 9051 §6.4.5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from courriel.mail.message import parse
from courriel.session.imap.fetch import plan_fetch, render_fetch
from courriel.store.base import MessageInfo
from courriel.testing.imap import fetch_attributes
from courriel.wire.imap.fetch import FetchItem

RAW = b"From: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


def info(flags: frozenset[str] = frozenset()) -> MessageInfo:
    return MessageInfo(9, 5, flags, datetime(2024, 5, 1, tzinfo=UTC), len(RAW))


@pytest.mark.parametrize(
    ("text", "meta", "body"),
    [
        (b"FLAGS", False, False),
        (b"FAST", False, False),
        (b"(UID MODSEQ INTERNALDATE RFC822.SIZE)", False, False),
        (b"ALL", True, False),  # ENVELOPE
        (b"FULL", True, False),  # ENVELOPE and BODY
        (b"BODYSTRUCTURE", True, False),
        (b"BODY.PEEK[]", False, True),
        (b"BODY.PEEK[HEADER]", False, True),
        (b"BODY.PEEK[TEXT]<0.100>", False, True),
        (b"BODY.PEEK[HEADER.FIELDS (From)]", False, True),
        (b"RFC822.HEADER", False, True),
        (b"RFC822", False, True),
        (b"BODY.PEEK[1]", True, True),
        (b"BODY.PEEK[1.MIME]", True, True),
        (b"BODY.PEEK[2.HEADER]", True, True),
        (b"BINARY.PEEK[]", False, True),
        (b"BINARY.PEEK[1]", True, True),
        (b"BINARY.SIZE[]", False, False),
        (b"BINARY.SIZE[1]", True, False),
    ],
)
def test_what_each_request_needs(text: bytes, meta: bool, body: bool) -> None:
    plan = plan_fetch(fetch_attributes(text), uid=False, condstore=False)
    assert (plan.needs_meta, plan.needs_body) == (meta, body)


@pytest.mark.parametrize(
    ("text", "sets_seen"),
    [
        (b"BODY[]", True),
        (b"BODY[1]", True),
        (b"BINARY[1]", True),
        (b"RFC822", True),
        (b"RFC822.TEXT", True),
        (b"BODY.PEEK[]", False),
        (b"BINARY.PEEK[1]", False),
        (b"RFC822.HEADER", False),  # RFC 9051 §6.4.5: equivalent to BODY.PEEK[HEADER]
        (b"BODY", False),
        (b"ENVELOPE", False),
    ],
)
def test_which_requests_set_seen(text: bytes, sets_seen: bool) -> None:
    plan = plan_fetch(fetch_attributes(text), uid=False, condstore=False)
    assert plan.sets_seen is sets_seen
    assert (FetchItem.FLAGS in plan.attributes) is sets_seen


def test_examine_never_sets_seen() -> None:
    plan = plan_fetch(fetch_attributes(b"BODY[]"), uid=False, condstore=False, read_only=True)
    assert not plan.sets_seen
    assert FetchItem.FLAGS not in plan.attributes


def test_uid_fetch_adds_uid_first() -> None:
    plan = plan_fetch(fetch_attributes(b"(FLAGS RFC822.SIZE)"), uid=True, condstore=False)
    assert plan.attributes == (FetchItem.UID, FetchItem.FLAGS, FetchItem.RFC822_SIZE)
    out = render_fetch(2, info(), plan, None, None, utf8=False)
    assert out == b"* 2 FETCH (UID 9 FLAGS () RFC822.SIZE %d)\r\n" % len(RAW)


def test_uid_asked_explicitly_keeps_its_place() -> None:
    plan = plan_fetch(fetch_attributes(b"(FLAGS UID)"), uid=True, condstore=False)
    assert plan.attributes == (FetchItem.FLAGS, FetchItem.UID)


def test_condstore_adds_modseq_to_every_fetch() -> None:
    plan = plan_fetch(fetch_attributes(b"FLAGS"), uid=False, condstore=True)
    assert plan.wants_modseq
    assert render_fetch(1, info(), plan, None, None, utf8=False) == (
        b"* 1 FETCH (FLAGS () MODSEQ (5))\r\n"
    )
    plain = plan_fetch(fetch_attributes(b"FLAGS"), uid=False, condstore=False)
    assert not plain.wants_modseq
    assert FetchItem.MODSEQ not in plain.attributes


def test_modseq_asked_without_condstore_enabled() -> None:
    plan = plan_fetch(fetch_attributes(b"(MODSEQ FLAGS)"), uid=False, condstore=True)
    assert plan.wants_modseq
    assert plan.attributes == (FetchItem.MODSEQ, FetchItem.FLAGS)


def test_duplicates_are_answered_once() -> None:
    plan = plan_fetch(
        fetch_attributes(b"(FLAGS FLAGS UID BODY.PEEK[] BODY.PEEK[])"), uid=True, condstore=False
    )
    assert len(plan.attributes) == 3


def test_implicit_flags_only_when_seen_changed() -> None:
    plan = plan_fetch(fetch_attributes(b"BODY[TEXT]"), uid=False, condstore=False)
    assert plan.implicit_flags
    seen = info(frozenset({"\\Seen"}))
    meta = parse(RAW)
    changed = render_fetch(1, seen, plan, meta, RAW, utf8=False)
    assert changed == b"* 1 FETCH (BODY[TEXT] {6}\r\nbody\r\n FLAGS (\\Seen))\r\n"
    unchanged = render_fetch(1, seen, plan, meta, RAW, utf8=False, seen_changed=False)
    assert unchanged == b"* 1 FETCH (BODY[TEXT] {6}\r\nbody\r\n)\r\n"


def test_flags_asked_explicitly_is_always_sent() -> None:
    plan = plan_fetch(fetch_attributes(b"(FLAGS BODY[TEXT])"), uid=False, condstore=False)
    assert not plan.implicit_flags
    out = render_fetch(
        1, info(frozenset({"\\Seen"})), plan, parse(RAW), RAW, utf8=False, seen_changed=False
    )
    assert out.startswith(b"* 1 FETCH (FLAGS (\\Seen) BODY[TEXT] ")
