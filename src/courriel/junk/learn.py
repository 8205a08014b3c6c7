"""Learning from what users do over IMAP: into Junk is junk, out of it is not.

Theory of operation
-------------------
The IMAP session calls ``JunkLearner`` after a COPY or MOVE and after a STORE has changed
flags, with what the store answered; the learner decides whether the action says anything:

====================================================  ============
COPY or MOVE into the Junk mailbox                    junk
COPY or MOVE out of Junk into any mailbox but Trash   not junk
STORE adding ``$Junk`` (Thunderbird: also ``Junk``)   junk
STORE adding ``$NotJunk`` (``NonJunk``)               not junk
====================================================  ============

The Junk mailbox is the one with the ``\\Junk`` special-use attribute (RFC 6154), else one
named Junk or Spam; Trash likewise (``\\Trash``, or Trash / Deleted Items), because deleting a
message from Junk says nothing about it. Only STORE's messages whose flags changed are learned,
and a store-side mark per message (``junk_trained``, keyed by a digest of its bytes) makes the
same lesson given twice count once and a changed mind move the message from one class to the
other, never both.

The lesson is learned before the command's OK, so the client's next action meets the updated
filter: messages are read from the store one by one, tokenised in batches of ``BATCH`` in a
worker thread (never on the event loop) and trained in one store transaction per batch (at
most ``BATCH_BYTES`` of messages held at once). At
most ``MAX_PER_COMMAND`` messages of one command are learned (the first ones): a user sorting
ten thousand messages at once waits seconds, not minutes, and that many examples of one kind
say nothing more. A failure to learn is logged and never fails the command, which has already
done what the user asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from courriel.junk.tokens import digest, tokens
from courriel.logs import kv
from courriel.store.base import JunkSample, Mailbox, NotFound, Store, StoreError

log = logging.getLogger("courriel.junk")

# Keywords compare case-insensitively (RFC 9051 §2.3.2). $Junk and $NotJunk are registered
# (RFC 5788); Thunderbird also sets its older Junk and NonJunk.
JUNK_KEYWORDS = frozenset({"$junk", "junk"})
NOT_JUNK_KEYWORDS = frozenset({"$notjunk", "nonjunk", "notjunk"})
BATCH = 50  # messages tokenised and trained together
BATCH_BYTES = 8 * 1024 * 1024  # ... or fewer, when they are large
MAX_PER_COMMAND = 500
_JUNK_NAMES = frozenset({"junk", "spam"})
_TRASH_NAMES = frozenset({"trash", "deleted items", "deleted messages"})


def _has_use(box: Mailbox, use: str) -> bool:
    return use.lower() in (box.special_use or "").lower().split()


def is_junk(box: Mailbox) -> bool:
    return _has_use(box, "\\Junk") or box.name.rsplit("/", 1)[-1].lower() in _JUNK_NAMES


def is_trash(box: Mailbox) -> bool:
    return _has_use(box, "\\Trash") or box.name.rsplit("/", 1)[-1].lower() in _TRASH_NAMES


def lesson_of_copy(source: Mailbox, target: Mailbox) -> bool | None:
    """True: junk, False: not junk, None: the copy teaches nothing."""
    if is_junk(target):
        return None if is_junk(source) else True
    if is_junk(source) and not is_trash(target):
        return False
    return None


def lesson_of_flags(flags: Sequence[str]) -> bool | None:
    lowered = {f.lower() for f in flags}
    junk, not_junk = bool(lowered & JUNK_KEYWORDS), bool(lowered & NOT_JUNK_KEYWORDS)
    if junk == not_junk:
        return None  # neither, or both at once: no lesson
    return junk


def _samples(raws: list[bytes]) -> list[JunkSample]:
    return [JunkSample(digest(raw), tokens(raw)) for raw in raws]


class JunkLearner:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def after_copy(
        self, user_id: int, source: Mailbox, target: Mailbox, pairs: Sequence[tuple[int, int]]
    ) -> None:
        spam = lesson_of_copy(source, target)
        if spam is not None and pairs:
            await self.learn(user_id, target.id, [new for _, new in pairs], spam)

    async def after_flags(
        self, user_id: int, mailbox_id: int, uids: Sequence[int], added: Sequence[str]
    ) -> None:
        spam = lesson_of_flags(added)
        if spam is not None and uids:
            await self.learn(user_id, mailbox_id, uids, spam)

    async def learn(self, user_id: int, mailbox_id: int, uids: Sequence[int], spam: bool) -> int:
        """Trains the messages (at most ``MAX_PER_COMMAND``); returns how many changed class."""
        changed = 0
        chosen = list(uids)[:MAX_PER_COMMAND]
        raws: list[bytes] = []
        try:
            for uid in chosen:
                try:
                    raws.append(await self._store.read_message(mailbox_id, uid))
                except NotFound:
                    continue  # expunged meanwhile: nothing to learn from
                if len(raws) >= BATCH or sum(map(len, raws)) >= BATCH_BYTES:
                    changed += await self._train(user_id, raws, spam)
                    raws = []
            if raws:
                changed += await self._train(user_id, raws, spam)
        except StoreError as e:
            log.warning("junk filter not trained: %s", e, extra=kv(user=user_id))
            return changed
        if len(uids) > len(chosen):
            log.info(
                "junk filter trained on the first messages only",
                extra=kv(user=user_id, asked=len(uids), learned=len(chosen)),
            )
        log.info(
            "junk filter trained",
            extra=kv(user=user_id, messages=len(chosen), changed=changed, spam=spam),
        )
        return changed

    async def _train(self, user_id: int, raws: list[bytes], spam: bool) -> int:
        samples = await asyncio.to_thread(_samples, raws)  # hashing and parsing: off the loop
        return await self._store.junk_train(user_id, samples, spam)
