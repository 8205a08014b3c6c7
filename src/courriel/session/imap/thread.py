"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3), over stored sort keys.

Theory of operation
-------------------
Both algorithms take the matched messages as ``Threadable``: parallel columns, in mailbox
order, of the number to answer with, the sent date already defaulted to the internal date
(RFC 5256 §2.2) and the keys ``courriel.mail.sortkeys`` stored that threading compares. They
return a ``ThreadForest`` for the response encoder. Ties are broken by that number, which
grows with mailbox order for sequence numbers and UIDs alike (RFC 5256 §2.2: "the order in
which they appear in the mailbox").

REFERENCES follows the six steps of RFC 5256 §3 on a ``_Tree``: containers are indexes into
flat integer columns (message, parent, first and last child, previous and next sibling), not
objects, so threading 100,000 messages creates no 100,000 objects for the cyclic garbage
collector to walk again and again, and nothing recurses: one reply chain may be 100,000 deep,
so every walk keeps its own stack. The loop check of step 1 walks up from the new parent only
when the new child already has children (otherwise it cannot be an ancestor), which keeps the
usual mailbox linear.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from courriel.wire.imap.sort import ThreadForest

NONE = -1
MAX_WALK = 10_000  # parents one loop check of step 1 follows at most


@dataclass(frozen=True, slots=True)
class Threadable:
    """The messages to thread, one column per key, in mailbox order."""

    numbers: Sequence[int]  # sequence number or UID, as the command answers
    sent: Sequence[int]  # RFC 5256 §2.2: the Date, or the internal date when it is unreadable
    subjects: Sequence[str]  # base subject, upper-cased (``sortkeys.SortKeys``)
    replies: Sequence[bool]  # the subject said reply or forward
    message_ids: Sequence[str]
    references: Sequence[str]  # the parents' ids, oldest first, space-separated


def ordered_subject(msgs: Threadable) -> ThreadForest:
    """RFC 5256 §3 ORDEREDSUBJECT: by base subject then sent date; the first message of each
    subject is the parent of the others; threads in the order of their first message's date."""
    n = len(msgs.numbers)
    subjects, sent, numbers = msgs.subjects, msgs.sent, msgs.numbers
    # by subject, then date, then number: stable sorts, the last key first (no key tuples)
    order = sorted(range(n), key=numbers.__getitem__)
    order.sort(key=sent.__getitem__)
    order.sort(key=subjects.__getitem__)
    first, after = [NONE] * n, [NONE] * n
    roots: list[int] = []
    previous = NONE
    for i in order:
        if roots and subjects[i] == subjects[roots[-1]]:
            if previous == roots[-1]:
                first[previous] = i
            else:
                after[previous] = i
        else:
            roots.append(i)
        previous = i
    roots.sort(key=numbers.__getitem__)
    roots.sort(key=sent.__getitem__)
    return ThreadForest(roots, numbers, first, after)


class _Tree:
    """RFC 5256 §3 REFERENCES containers: node i holds message ``msg[i]`` or is a placeholder
    (``NONE``); its children are a doubly linked list of siblings."""

    __slots__ = ("first", "last", "msg", "nxt", "parent", "prev")

    def __init__(self) -> None:
        self.msg: list[int] = []
        self.parent: list[int] = []
        self.first: list[int] = []
        self.last: list[int] = []
        self.prev: list[int] = []
        self.nxt: list[int] = []

    def new(self, msg: int) -> int:
        self.parent.append(NONE)
        self.first.append(NONE)
        self.last.append(NONE)
        self.prev.append(NONE)
        self.nxt.append(NONE)
        self.msg.append(msg)
        return len(self.msg) - 1

    def link(self, parent: int, child: int) -> None:
        """``child`` (a root) becomes the last child of ``parent``."""
        last = self.last[parent]
        self.parent[child] = parent
        self.prev[child] = last
        self.nxt[child] = NONE
        if last == NONE:
            self.first[parent] = child
        else:
            self.nxt[last] = child
        self.last[parent] = child

    def unlink(self, child: int) -> None:
        parent = self.parent[child]
        if parent == NONE:
            return
        before, after = self.prev[child], self.nxt[child]
        if before == NONE:
            self.first[parent] = after
        else:
            self.nxt[before] = after
        if after == NONE:
            self.last[parent] = before
        else:
            self.prev[after] = before
        self.parent[child] = self.prev[child] = self.nxt[child] = NONE

    def is_ancestor(self, node: int, of: int) -> bool:
        """Whether ``node`` is ``of`` or above it."""
        if self.first[node] == NONE:
            return node == of  # nothing hangs below it
        parent = self.parent
        for _ in range(MAX_WALK):
            if of == node:
                return True
            of = parent[of]
            if of == NONE:
                return False
        # Only crafted References (each message answering one sent later) walk this far;
        # counted as a loop, the link is not made, and no check walks the whole mailbox.
        return True

    def children(self, node: int) -> list[int]:
        out: list[int] = []
        child = self.first[node]
        while child != NONE:
            out.append(child)
            child = self.nxt[child]
        return out

    def set_children(self, node: int, kids: list[int]) -> None:
        """Re-links ``node``'s children in the order of ``kids`` (the same set)."""
        self.first[node] = kids[0] if kids else NONE
        self.last[node] = kids[-1] if kids else NONE
        for i, kid in enumerate(kids):
            self.parent[kid] = node
            self.prev[kid] = kids[i - 1] if i else NONE
            self.nxt[kid] = kids[i + 1] if i + 1 < len(kids) else NONE

    def post_order(self, roots: Sequence[int]) -> list[int]:
        """Every node under ``roots``, each after all of its descendants."""
        out: list[int] = []
        stack = list(roots)
        first, nxt = self.first, self.nxt
        while stack:
            node = stack.pop()
            out.append(node)
            child = first[node]
            while child != NONE:
                stack.append(child)
                child = nxt[child]
        out.reverse()
        return out


def _build(tree: _Tree, msgs: Threadable) -> None:
    """Step 1: every message and every id referenced in a node, linked parent to child."""
    by_id: dict[str, int] = {}

    def node_of(msg_id: str) -> int:
        node = by_id.get(msg_id)
        if node is None:
            node = by_id[msg_id] = tree.new(NONE)
        return node

    for m, msg_id in enumerate(msgs.message_ids):
        held = by_id.get(msg_id) if msg_id else None
        if held is not None and tree.msg[held] == NONE:
            tree.msg[held] = m  # a placeholder for this id until now
            node = held
        else:
            # No Message-ID, or one already taken: a node of its own (step 1, duplicates)
            node = tree.new(m)
            if msg_id and held is None:
                by_id[msg_id] = node
        chain = [node_of(r) for r in msgs.references[m].split()]
        for parent, child in itertools.pairwise(chain):
            # 1A: link each reference to the next, keeping links made before, never a loop
            if tree.parent[child] == NONE and not tree.is_ancestor(child, parent):
                tree.link(parent, child)
        # 1B: the last reference is the parent; a parent found before is replaced
        tree.unlink(node)
        if chain and not tree.is_ancestor(node, chain[-1]):
            tree.link(chain[-1], node)


def _prune(tree: _Tree, roots: list[int]) -> list[int]:
    """Step 3: placeholders go; their children move up, but never several to the top."""
    msg = tree.msg
    for node in tree.post_order(roots):
        kids = tree.children(node)
        if any(msg[k] == NONE for k in kids):
            kept: list[int] = []
            for kid in kids:
                # a placeholder below the top: already pruned, so its children are messages
                kept += tree.children(kid) if msg[kid] == NONE else (kid,)
            tree.set_children(node, kept)
    top: list[int] = []
    for node in roots:
        kids = tree.children(node) if msg[node] == NONE else [node, node]
        if len(kids) <= 1:  # a placeholder with no child or one: gone, its child promoted
            for kid in kids:
                tree.unlink(kid)
            top += kids
        else:
            top.append(node)
    return top


class _References:
    """Steps 4 to 6 over a built and pruned tree."""

    def __init__(self, tree: _Tree, msgs: Threadable) -> None:
        self.tree = tree
        self.msgs = msgs

    def message(self, node: int) -> int:
        """The node's message, or its first child's for a placeholder."""
        m = self.tree.msg[node]
        return m if m != NONE else self.tree.msg[self.tree.first[node]]

    def date_key(self, node: int) -> tuple[int, int]:
        m = self.message(node)
        return self.msgs.sent[m], self.msgs.numbers[m]

    def sort_children(self, node: int) -> None:
        kids = self.tree.children(node)
        if len(kids) > 1:
            kids.sort(key=self.date_key)
            self.tree.set_children(node, kids)

    def subject(self, node: int) -> tuple[str, bool]:
        """Step 5B i-ii: the thread's base subject, and whether it is a reply or forward."""
        m = self.message(node)
        return self.msgs.subjects[m], self.msgs.replies[m]

    def merge_subjects(self, roots: list[int]) -> list[int]:
        """Step 5: top-level threads with one base subject are gathered."""
        tree, msg = self.tree, self.tree.msg
        table: dict[str, int] = {}
        for node in roots:  # 5B
            subject, reply = self.subject(node)
            if not subject:
                continue
            held = table.get(subject)
            # 5B v: a placeholder, or a thread that is no reply, is preferred to a reply
            if held is None or (
                msg[held] != NONE and (msg[node] == NONE or (self.subject(held)[1] and not reply))
            ):
                table[subject] = node
        out: list[int] = list(roots)
        place = {node: i for i, node in enumerate(roots)}
        for i, node in enumerate(roots):  # 5C
            subject, reply = self.subject(node)
            held = table.get(subject, NONE) if subject else NONE
            if held in (NONE, node):
                continue
            if msg[held] == NONE and msg[node] == NONE:
                for kid in tree.children(node):
                    tree.unlink(kid)
                    tree.link(held, kid)
            elif msg[held] == NONE or (reply and not self.subject(held)[1]):
                tree.link(held, node)
            else:
                dummy = tree.new(NONE)
                out[place[held]] = dummy
                place[dummy] = place[held]
                tree.link(dummy, held)
                tree.link(dummy, node)
                table[subject] = dummy
            out[i] = NONE
        return [node for node in out if node != NONE]


def references(msgs: Threadable) -> ThreadForest:
    """RFC 5256 §3 REFERENCES."""
    tree = _Tree()
    _build(tree, msgs)
    roots = [node for node, parent in enumerate(tree.parent) if parent == NONE]  # step 2
    roots = _prune(tree, roots)  # step 3
    steps = _References(tree, msgs)
    for node in roots:  # step 4: a placeholder sorts by its first child
        if tree.msg[node] == NONE:
            steps.sort_children(node)
    roots.sort(key=steps.date_key)
    roots = steps.merge_subjects(roots)  # step 5
    for node in tree.post_order(roots):  # step 6: children first, then their parents' siblings
        steps.sort_children(node)
    roots.sort(key=steps.date_key)
    numbers = msgs.numbers
    return ThreadForest(
        roots, [0 if m == NONE else numbers[m] for m in tree.msg], tree.first, tree.nxt
    )
