"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3) on hand-made key sets."""

from __future__ import annotations

import sys

from courriel.mail.sortkeys import base_subject
from courriel.session.imap import thread as imap_thread
from courriel.session.imap.thread import Threadable
from courriel.wire.imap import responses as r
from courriel.wire.imap.sort import ThreadForest

Msg = tuple[int, int, str, bool, str, str]


def msg(n: int, subject: str, sent: int, msg_id: str = "", refs: tuple[str, ...] = ()) -> Msg:
    base, reply = base_subject(subject)
    return n, sent, base.upper(), reply, msg_id, " ".join(refs)


def columns(messages: list[Msg]) -> Threadable:
    if not messages:
        return Threadable((), (), (), (), (), ())
    numbers, sent, subjects, replies, ids, refs = zip(*messages, strict=True)
    return Threadable(numbers, sent, subjects, replies, ids, refs)


def references(messages: list[Msg]) -> ThreadForest:
    return imap_thread.references(columns(messages))


def ordered_subject(messages: list[Msg]) -> ThreadForest:
    return imap_thread.ordered_subject(columns(messages))


def wire(threads: ThreadForest) -> bytes:
    return r.thread(threads)


def test_ordered_subject_groups_by_base_subject_and_orders_by_date() -> None:
    messages = [
        msg(1, "b", 50),
        msg(2, "Re: a", 20),
        msg(3, "a", 10),
        msg(4, "Re: b", 60),
        msg(5, "Fwd: a", 30),
        msg(6, "c", 5),
    ]
    # threads by their first message's date: c (5), a (10), b (50); children by date
    assert wire(ordered_subject(messages)) == b"* THREAD (6)(3 (2)(5))(1 4)\r\n"


def test_references_links_replies_and_keeps_mailbox_order_for_ties() -> None:
    messages = [
        msg(1, "root", 10, "r@x"),
        msg(2, "Re: root", 20, "a@x", ("r@x",)),
        msg(3, "Re: root", 30, "b@x", ("r@x", "a@x")),
        msg(4, "Re: root", 25, "c@x", ("r@x",)),
        msg(5, "other", 15, "o@x"),
    ]
    # 1 has two children by date: 2 (20, with child 3) and 4 (25)
    assert wire(references(messages)) == b"* THREAD (1 (2 3)(4))(5)\r\n"


def test_references_missing_parent_becomes_a_placeholder_at_the_top() -> None:
    messages = [
        msg(1, "Re: gone", 10, "a@x", ("gone@x",)),
        msg(2, "Re: gone", 20, "b@x", ("gone@x",)),
        msg(3, "Re: lost", 5, "c@x", ("lost@x",)),
    ]
    # gone@x has two children: kept as a placeholder; lost@x has one: promoted (step 3)
    assert wire(references(messages)) == b"* THREAD (3)((1)(2))\r\n"


def test_references_merges_threads_by_subject() -> None:
    messages = [
        msg(1, "Hello", 10, "a@x"),
        msg(2, "Re: Hello", 20, "b@x"),  # no References: joined by subject (step 5C)
        msg(3, "Hello", 30, "c@x"),  # neither is a reply: a placeholder holds both
        msg(4, "Bye", 5, "d@x"),
    ]
    assert wire(references(messages)) == b"* THREAD (4)((1 2)(3))\r\n"


def test_references_duplicate_ids_and_self_references_make_no_loop() -> None:
    messages = [
        msg(1, "x", 10, "a@x", ("b@x",)),
        msg(2, "y", 20, "b@x", ("a@x",)),  # would make a loop: stays a root
        msg(3, "z", 30, "a@x", ("a@x",)),  # duplicate id: treated as having none
        msg(4, "w", 40, "d@x", ("d@x",)),  # refers to itself
    ]
    assert wire(references(messages)) == b"* THREAD (2 1 3)(4)\r\n"


def test_a_chain_deeper_than_the_recursion_limit_is_threaded() -> None:
    depth = sys.getrecursionlimit() * 3
    messages = [msg(1, "s", 0, "m1@x")]
    messages += [msg(i, "Re: s", i, f"m{i}@x", (f"m{i - 1}@x",)) for i in range(2, depth + 1)]
    out = wire(references(messages))
    assert out == b"* THREAD (" + b" ".join(str(i).encode() for i in range(1, depth + 1)) + b")\r\n"
    assert wire(ordered_subject(messages[:3])) == b"* THREAD (1 (2)(3))\r\n"


def test_no_messages_no_threads() -> None:
    assert wire(references([])) == b"* THREAD\r\n"
    assert wire(ordered_subject([])) == b"* THREAD\r\n"
