"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3), over stored sort keys.

Theory of operation
-------------------
Both algorithms take the matched messages as ``Threadable`` records (the number to answer
with, the keys ``courriel.mail.sortkeys`` stored, the sent date already defaulted to the
internal date, RFC 5256 §2.2) in mailbox order, and return the forest the response encodes.
Ties are broken by that number, which grows with mailbox order for sequence numbers and UIDs
alike (RFC 5256 §2.2: "the order in which they appear in the mailbox").

REFERENCES follows the six steps of RFC 5256 §3 on ``_Box`` containers. Nothing recurses: a
mailbox can hold one reply chain 100,000 messages deep, so every walk keeps its own stack.
The loop check of step 1 walks up from the new parent only when the new child already has
children (otherwise it cannot be an ancestor), which keeps the usual mailbox linear.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from courriel.mail.sortkeys import SortKeys
from courriel.wire.imap.sort import ThreadNode


@dataclass(frozen=True, slots=True)
class Threadable:
    number: int  # sequence number or UID, as the command answers
    keys: SortKeys | None
    sent: int  # RFC 5256 §2.2: the Date, or the internal date when it cannot be read


def _subject(m: Threadable) -> str:
    return "" if m.keys is None else m.keys.subject


def ordered_subject(messages: Sequence[Threadable]) -> list[ThreadNode]:
    """RFC 5256 §3 ORDEREDSUBJECT: by base subject then sent date; the first message of each
    subject is the parent of the others; threads in the order of their first message's date."""
    ordered = sorted(messages, key=lambda m: (_subject(m), m.sent, m.number))
    threads: list[tuple[int, int, ThreadNode]] = []
    last: str | None = None
    for m in ordered:
        subject = _subject(m)
        if subject == last:
            threads[-1][2].children.append(ThreadNode(m.number))
        else:
            threads.append((m.sent, m.number, ThreadNode(m.number)))
            last = subject
    threads.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in threads]


class _Box:
    """A container of RFC 5256 §3 REFERENCES: a message, or a placeholder (``msg`` None)."""

    __slots__ = ("children", "msg", "parent")

    def __init__(self, msg: Threadable | None = None) -> None:
        self.msg = msg
        self.parent: _Box | None = None
        self.children: list[_Box] = []


def _is_ancestor(box: _Box, of: _Box) -> bool:
    """Whether ``box`` is ``of`` or above it."""
    if not box.children:
        return box is of  # nothing hangs below it
    node: _Box | None = of
    while node is not None:
        if node is box:
            return True
        node = node.parent
    return False


def _link(parent: _Box, child: _Box) -> None:
    child.parent = parent
    parent.children.append(child)


def _unlink(child: _Box) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
        child.parent = None


def _build(messages: Sequence[Threadable]) -> list[_Box]:
    """Step 1: every message and every id referenced in a box, linked parent to child."""
    by_id: dict[str, _Box] = {}
    boxes: list[_Box] = []

    def box_of(msg_id: str) -> _Box:
        box = by_id.get(msg_id)
        if box is None:
            box = by_id[msg_id] = _Box()
            boxes.append(box)
        return box

    for m in messages:
        msg_id = "" if m.keys is None else m.keys.message_id
        held = by_id.get(msg_id) if msg_id else None
        if held is not None and held.msg is None:
            held.msg = m  # a placeholder for this id until now
            box = held
        else:
            # No Message-ID, or one already taken: a box of its own (step 1, duplicates)
            box = _Box(m)
            boxes.append(box)
            if msg_id and held is None:
                by_id[msg_id] = box
        refs = () if m.keys is None else m.keys.references
        chain = [box_of(r) for r in refs]
        for parent, child in itertools.pairwise(chain):
            # 1A: link each reference to the next, keeping links made before, never a loop
            if child.parent is None and not _is_ancestor(child, parent):
                _link(parent, child)
        # 1B: the last reference is the parent; a parent found before is replaced
        _unlink(box)
        if chain and not _is_ancestor(box, chain[-1]):
            _link(chain[-1], box)
    return boxes


def _post_order(roots: list[_Box]) -> list[_Box]:
    """Every box under ``roots``, each after all of its descendants."""
    out: list[_Box] = []
    stack = list(roots)
    while stack:
        box = stack.pop()
        out.append(box)
        stack.extend(box.children)
    out.reverse()
    return out


def _prune(roots: list[_Box]) -> list[_Box]:
    """Step 3: placeholders go; their children move up, but never several to the top."""
    for box in _post_order(roots):
        if any(c.msg is None for c in box.children):
            kept: list[_Box] = []
            for child in box.children:
                if child.msg is None:
                    kept.extend(child.children)  # already pruned: holds messages only
                else:
                    kept.append(child)
            for child in kept:
                child.parent = box
            box.children = kept
    top: list[_Box] = []
    for box in roots:
        if box.msg is None and len(box.children) <= 1:
            for child in box.children:
                child.parent = None
            top.extend(box.children)
        else:
            top.append(box)
    return top


def _date_key(box: _Box) -> tuple[int, int]:
    """The sent date and number of the box's message, or of its first child's."""
    msg = box.msg if box.msg is not None else box.children[0].msg
    assert msg is not None  # placeholders hold messages only, after _prune
    return msg.sent, msg.number


def _thread_subject(box: _Box) -> tuple[str, bool]:
    """Step 5B i-ii: the base subject of the thread, and whether it is a reply or forward."""
    msg = box.msg if box.msg is not None else box.children[0].msg
    keys = None if msg is None else msg.keys
    return ("", False) if keys is None else (keys.subject, keys.reply)


def _merge_subjects(roots: list[_Box]) -> list[_Box]:
    """Step 5: top-level threads with one base subject are gathered."""
    table: dict[str, _Box] = {}
    for box in roots:  # 5B
        subject, reply = _thread_subject(box)
        if not subject:
            continue
        held = table.get(subject)
        # 5B v: a placeholder, or a thread that is no reply, is preferred to a reply
        better = box.msg is None or (_thread_subject(held)[1] and not reply) if held else True
        if held is None or (held.msg is not None and better):
            table[subject] = box
    out: list[_Box | None] = list(roots)
    place = {id(box): i for i, box in enumerate(roots)}
    for i, box in enumerate(roots):  # 5C
        subject, reply = _thread_subject(box)
        held = table.get(subject) if subject else None
        if held is None or held is box:
            continue
        if held.msg is None and box.msg is None:
            for child in box.children:
                _link(held, child)
            box.children = []
        elif held.msg is None or (reply and not _thread_subject(held)[1]):
            _link(held, box)
        else:
            dummy = _Box()
            out[place[id(held)]] = dummy
            place[id(dummy)] = place[id(held)]
            _link(dummy, held)
            _link(dummy, box)
            table[subject] = dummy
        out[i] = None
    return [b for b in out if b is not None]


def _to_nodes(roots: list[_Box]) -> list[ThreadNode]:
    made: dict[int, ThreadNode] = {}
    for box in _post_order(roots):
        node = ThreadNode(None if box.msg is None else box.msg.number)
        node.children = [made.pop(id(c)) for c in box.children]
        made[id(box)] = node
    return [made[id(b)] for b in roots]


def references(messages: Sequence[Threadable]) -> list[ThreadNode]:
    """RFC 5256 §3 REFERENCES."""
    boxes = _build(messages)
    roots = [b for b in boxes if b.parent is None]  # step 2
    roots = _prune(roots)  # step 3
    for box in roots:  # step 4: a placeholder sorts by its first child
        if box.msg is None:
            box.children.sort(key=_date_key)
    roots.sort(key=_date_key)
    roots = _merge_subjects(roots)  # step 5
    for box in _post_order(roots):  # step 6: children first, then their parents' siblings
        box.children.sort(key=_date_key)
    roots.sort(key=_date_key)
    return _to_nodes(roots)
