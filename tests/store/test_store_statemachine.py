"""A Hypothesis state machine against a model of two mailboxes (SQLite backend).

Random sequences of append, flag changes (with and without UNCHANGEDSINCE), expunge, copy, move
and close-and-reopen; after every step the store must agree with the model on UIDs, flags,
per-message MODSEQ, UIDNEXT, HIGHESTMODSEQ and the expunge log.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from courriel.store.base import FlagOp, NewMessage, Store
from courriel.store.sqlite import open_sqlite

FLAGS = st.frozensets(st.sampled_from(["\\Seen", "\\Flagged", "\\Deleted", "$a", "$b"]))
WHEN = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class BoxModel:
    id: int
    uidnext: int = 1
    highest: int = 1
    messages: dict[int, tuple[frozenset[str], int, bytes]] = field(default_factory=dict)
    expunged: set[int] = field(default_factory=set)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="courriel-sm-"))
        self.store: Store = self.run(self._open())
        self.boxes: list[BoxModel] = []
        self.counter = 0
        self.run(self._setup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _open(self) -> Store:
        return await open_sqlite(self.dir / "courriel.db", self.dir / "blobs")

    async def _setup(self) -> None:
        await self.store.add_domain("example.org")
        user = await self.store.add_user("m@example.org", "h")
        inbox = await self.store.get_mailbox(user.id, "INBOX")
        other = await self.store.create_mailbox(user.id, "Other")
        assert inbox is not None
        self.boxes = [BoxModel(inbox.id), BoxModel(other.id)]

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def uids_of(self, data: st.DataObject, box: BoxModel) -> list[int]:
        pool = [*sorted(box.messages), box.uidnext + 5]  # plus one that does not exist
        return data.draw(st.lists(st.sampled_from(pool), max_size=6))

    @rule(b=st.integers(0, 1), flags=st.lists(FLAGS, min_size=1, max_size=3))
    def append(self, b: int, flags: list[frozenset[str]]) -> None:
        box = self.boxes[b]
        msgs = []
        for f in flags:
            self.counter += 1
            msgs.append(NewMessage(f"m{self.counter}".encode(), WHEN, f))
        res = self.run(self.store.append([(box.id, m) for m in msgs]))
        assert [r.uid for r in res] == list(range(box.uidnext, box.uidnext + len(msgs)))
        assert res[0].modseq > box.highest
        for r, m in zip(res, msgs, strict=True):
            box.messages[r.uid] = (m.flags - {"\\Recent"}, r.modseq, m.raw)
        box.uidnext += len(msgs)
        box.highest = res[0].modseq

    @rule(
        data=st.data(),
        b=st.integers(0, 1),
        op=st.sampled_from(FlagOp),
        flags=FLAGS,
        conditional=st.booleans(),
    )
    def store_flags(
        self, data: st.DataObject, b: int, op: FlagOp, flags: frozenset[str], conditional: bool
    ) -> None:
        box = self.boxes[b]
        uids = self.uids_of(data, box)
        since = None
        if conditional:
            since = data.draw(st.integers(0, box.highest))
        res = self.run(self.store.store_flags(box.id, uids, op, flags, unchanged_since=since))
        expect_changed, expect_modified = [], []
        for uid in sorted(set(uids) & set(box.messages)):
            old, modseq, _ = box.messages[uid]
            if since is not None and modseq > since:
                expect_modified.append(uid)
                continue
            new = old | flags if op is FlagOp.ADD else old - flags if op is FlagOp.REMOVE else flags
            if new != old:
                expect_changed.append((uid, new))
        assert res.modified == expect_modified
        assert [(c.uid, c.flags) for c in res.changed] == expect_changed
        if expect_changed:
            assert len({c.modseq for c in res.changed}) == 1 and res.changed[0].modseq > box.highest
            box.highest = res.changed[0].modseq
            for c in res.changed:
                box.messages[c.uid] = (c.flags, c.modseq, box.messages[c.uid][2])

    @rule(data=st.data(), b=st.integers(0, 1))
    def expunge(self, data: st.DataObject, b: int) -> None:
        box = self.boxes[b]
        uids = self.uids_of(data, box)
        res = self.run(self.store.expunge(box.id, uids))
        gone = sorted(set(uids) & set(box.messages))
        assert [e.uid for e in res] == gone
        if gone:
            assert res[0].modseq > box.highest
            box.highest = res[0].modseq
        for uid in gone:
            del box.messages[uid]
            box.expunged.add(uid)

    @rule(data=st.data(), src=st.integers(0, 1), dst=st.integers(0, 1), move=st.booleans())
    def copy_or_move(self, data: st.DataObject, src: int, dst: int, move: bool) -> None:
        s, d = self.boxes[src], self.boxes[dst]
        uids = self.uids_of(data, s)
        call = self.store.move if move else self.store.copy
        res = self.run(call(s.id, uids, d.id))
        present = sorted(set(uids) & set(s.messages))
        assert [p[0] for p in res.pairs] == present
        assert [p[1] for p in res.pairs] == list(range(d.uidnext, d.uidnext + len(present)))
        if not present:
            return
        copied = self.run(self.store.list_messages(d.id, d.uidnext))
        assert len(copied) == len(present) and copied[0].modseq > d.highest
        for (old_uid, new_uid), info in zip(res.pairs, copied, strict=True):
            flags, _, raw = s.messages[old_uid]
            d.messages[new_uid] = (flags, info.modseq, raw)
        d.uidnext += len(present)
        d.highest = copied[0].modseq
        if move:
            log = self.run(self.store.expunged_since(s.id, s.highest))
            assert [e.uid for e in log] == present
            s.highest = log[0].modseq
            for uid in present:
                del s.messages[uid]
                s.expunged.add(uid)

    @precondition(lambda self: self.counter % 3 == 0)
    @rule()
    def reopen(self) -> None:
        self.run(self.store.close())
        self.store = self.run(self._open())

    @invariant()
    def agrees_with_model(self) -> None:
        for box in self.boxes:
            mb = self.run(self.store.get_mailbox_by_id(box.id))
            assert mb is not None
            assert (mb.uidnext, mb.highestmodseq) == (box.uidnext, box.highest)
            infos = self.run(self.store.list_messages(box.id))
            assert {i.uid: (i.flags, i.modseq) for i in infos} == {
                uid: (f, m) for uid, (f, m, _) in box.messages.items()
            }
            log = self.run(self.store.expunged_since(box.id, 0))
            assert {e.uid for e in log} == box.expunged
            for uid, (_, _, raw) in list(box.messages.items())[:2]:
                assert self.run(self.store.read_message(box.id, uid)) == raw


StoreMachine.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_store_state_machine = StoreMachine.TestCase
