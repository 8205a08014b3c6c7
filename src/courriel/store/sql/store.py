"""The ``Store`` over a driver: scripts for the database, a ``BlobStore`` for bodies, events after.

Theory of operation
-------------------
``SqlStore`` implements ``courriel.store.base.Store`` once for every SQL backend. For a write it
runs a script through the ``Driver`` (which makes it durable), then publishes the script's
changes, then deletes the bodies the script freed. Writes are shielded from cancellation: once
submitted they may commit, and then their events must still go out.

Bodies. An append stores a body of at most ``inline_max`` bytes in the database, in the
transaction of the message itself (one fsync for the batch, none of its own); a larger one is
written to the ``BlobStore`` first (in threads, in parallel) and only then is the transaction
that points at it submitted. Bodies are shared by content, so the last reference to a body may
go away (in any process) between its ``put`` and the commit of an append that found it present.
The driver guards against that: a backend whose bodies can vanish so raises ``BodyMissing``
from the append's transaction (SQLite checks the files inside it, PostgreSQL's foreign key
refuses it), and the append writes the bodies again and retries. Freed bodies are deleted by
``_reap``, which a backend may override to delete under its write lock (SQLite).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from courriel.clock import SYSTEM_CLOCK, Clock
from courriel.mail.delivery import parse_meta
from courriel.store.base import (
    AclEntry,
    AddressLookup,
    Alias,
    Appended,
    Copied,
    Domain,
    Events,
    Expunged,
    FlagOp,
    FlagsResult,
    Mailbox,
    MailboxSince,
    MailboxStatus,
    MessageExtras,
    MessageInfo,
    NewMessage,
    NotFound,
    QuotaUsage,
    SearchHits,
    SharedMailbox,
    User,
)
from courriel.store.blobs import BlobStore, BodyMissing
from courriel.store.sql import (
    accounts,
    acl,
    coordination,
    mailboxes,
    messages,
    metadata,
    recent,
    urlauth,
)
from courriel.store.sql import seen as seen_scripts
from courriel.store.sql.access import AccessMixin
from courriel.store.sql.acme import AcmeMixin
from courriel.store.sql.core import (
    Done,
    Script,
    T,
    uid_ranges,
)
from courriel.store.sql.dkim import DkimKeysMixin
from courriel.store.sql.domainpolicy import DomainPolicyMixin
from courriel.store.sql.junk import JunkMixin
from courriel.store.sql.queue import SqlQueueStore
from courriel.store.sql.sieve import SieveScriptsMixin
from courriel.timeslice import TimeSlice

_log = logging.getLogger(__name__)
Triple = tuple[int, NewMessage, str]  # mailbox id, message, blob id
_FILL_BATCH = 100  # messages whose SORT keys one write makes (see messages.fill_sort_keys)
_PARSE_BATCH = 16  # messages stored unparsed whose bodies one read brings (``_parse_stored``)
# A write of at most this many messages is ``light`` (``_write``). The script of an append of
# 64 messages of 4 KB runs in about 0.8 ms (one of 16 in 0.25 ms); a flag change of 64 UIDs in
# far less.
LIGHT_ROWS = 64
_BODY_TRIES = 5  # an append whose body files keep vanishing gives up (Unavailable)


class Driver(Protocol):
    """Runs scripts: ``read`` in a consistent snapshot, ``write`` in a durable transaction."""

    light_writes: bool  # whether ``write(light=True)`` means anything (SQLite: on the loop)

    async def read(self, script: Script[T]) -> T: ...

    async def write(self, script: Script[T], *, durable: bool = True, light: bool = False) -> T: ...

    async def close(self) -> None: ...


class SqlStore(
    DkimKeysMixin, AcmeMixin, AccessMixin, SieveScriptsMixin, JunkMixin, DomainPolicyMixin
):
    """The ``Store``: runs scripts through a driver, bodies through a blob store, then events."""

    # Bodies larger than this are hashed in a thread, not on the event loop.
    _HASH_INLINE = 256 * 1024

    def __init__(
        self,
        driver: Driver,
        blobs: BlobStore,
        events: Events,
        *,
        inline_max: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._driver: Driver = driver
        self._clock = clock  # the time of leases, counters and remembered keys
        self._blobs = blobs
        self._events = events
        self._queue = SqlQueueStore(driver)
        self._inline_max = inline_max  # bodies up to this size live in the database

    @property
    def events(self) -> Events:
        return self._events

    @property
    def queue(self) -> SqlQueueStore:
        """The outbound queue's tables, on the same driver (``courriel.store.queue``)."""
        return self._queue

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    async def close(self) -> None:
        await self._events.close()
        try:
            await self._driver.close()
        finally:
            await self._blobs.close()

    async def _read(self, script: Script[T]) -> T:
        return await self._driver.read(script)

    async def _write(
        self, script: Script[Done[T]], *, durable: bool = True, light: bool = False
    ) -> T:
        """``durable=False``: a flag change or expunge, which acknowledges no message; the
        driver may commit it without waiting for the disk; ``light``: the script touches a few
        rows (at most ``LIGHT_ROWS`` messages), so the driver may run it on the event loop
        (both in ``courriel.store.sqlite.driver``)."""
        # Shielded: once submitted, a write may commit even if its caller is cancelled, and then
        # its events must still be published and its freed bodies deleted.
        return await asyncio.shield(self._write_now(script, durable, light))

    async def _write_now(
        self, script: Script[Done[T]], durable: bool = True, light: bool = False
    ) -> T:
        done = await self._driver.write(script, durable=durable, light=light)
        try:
            for change in done.changes:  # after the commit, never before
                await self._events.publish(change)
        except Exception:  # committed: the caller must hear success; a change is only a hint
            _log.exception("could not publish changes")
        if done.freed_blobs:
            await self._reap(done.freed_blobs)
        return done.value

    async def _reap(self, blob_ids: Sequence[str]) -> None:
        """Deletes the bodies that no row references (again) now."""
        try:
            live = await self._driver.read(messages.live_blobs(list(dict.fromkeys(blob_ids))))
            for blob_id in blob_ids:
                if blob_id not in live:
                    await self._blobs.delete(blob_id)
        except Exception:  # the commit stands; a body left behind is only wasted space
            _log.exception("could not delete unreferenced bodies")

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    # accounts

    async def add_domain(self, name: str) -> Domain:
        return await self._write(accounts.add_domain(name))

    async def get_domain(self, name: str) -> Domain | None:
        return await self._read(accounts.get_domain(name))

    async def list_domains(self) -> list[Domain]:
        return await self._read(accounts.list_domains())

    async def remove_domain(self, name: str) -> None:
        await self._write(accounts.remove_domain(name))

    async def set_catch_all(self, domain: str, target: str | None) -> None:
        await self._write(accounts.set_catch_all(domain, target))

    async def add_user(
        self, address: str, password_hash: str, *, quota_bytes: int | None = None
    ) -> User:
        return await self._write(
            accounts.add_user(address, password_hash, quota_bytes, self._now())
        )

    async def get_user(self, address: str) -> User | None:
        return await self._read(accounts.get_user(address))

    async def lookup_address(self, address: str) -> AddressLookup:
        return await self._read(accounts.lookup_address(address))

    async def get_user_by_id(self, user_id: int) -> User | None:
        return await self._read(accounts.get_user_by_id(user_id))

    async def list_users(self, domain: str | None = None) -> list[User]:
        return await self._read(accounts.list_users(domain))

    async def set_password(self, address: str, password_hash: str) -> None:
        await self._write(accounts.update_user(address, "password_hash", password_hash))

    async def set_quota(self, address: str, quota_bytes: int | None) -> None:
        await self._write(accounts.update_user(address, "quota_bytes", quota_bytes))

    async def set_count_quota(
        self, address: str, messages: int | None, mailboxes: int | None
    ) -> None:
        await self._write(accounts.set_count_quota(address, messages, mailboxes))

    async def remove_user(self, address: str, *, keep_an_admin: bool = False) -> None:
        await self._write(accounts.remove_user(address, keep_an_admin))

    async def add_alias(self, source: str, target: str) -> Alias:
        return await self._write(accounts.add_alias(source, target))

    async def list_aliases(self, domain: str | None = None) -> list[Alias]:
        return await self._read(accounts.list_aliases(domain))

    async def alias_targets(self, source: str) -> list[str]:
        return await self._read(accounts.alias_targets(source))

    async def remove_alias(self, source: str, target: str | None = None) -> None:
        await self._write(accounts.remove_alias(source, target))

    # mailboxes

    async def create_mailbox(
        self, user_id: int, name: str, *, special_use: str | None = None
    ) -> Mailbox:
        now = int(self._now().timestamp())
        return await self._write(mailboxes.create_mailbox(user_id, name, special_use, now))

    async def get_mailbox(self, user_id: int, name: str) -> Mailbox | None:
        return await self._read(mailboxes.get_mailbox(user_id, name))

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        return await self._read(mailboxes.get_mailbox_by_id(mailbox_id))

    async def list_mailboxes(self, user_id: int) -> list[Mailbox]:
        return await self._read(mailboxes.list_mailboxes(user_id))

    async def rename_mailbox(self, user_id: int, old: str, new: str) -> Mailbox:
        now = int(self._now().timestamp())
        return await self._write(mailboxes.rename_mailbox(user_id, old, new, now))

    async def delete_mailbox(self, user_id: int, name: str) -> None:
        await self._write(mailboxes.delete_mailbox(user_id, name))

    async def subscriptions(self, user_id: int) -> list[str]:
        return await self._read(mailboxes.subscriptions(user_id))

    async def set_subscribed(self, user_id: int, name: str, subscribed: bool) -> None:
        await self._write(mailboxes.set_subscribed(user_id, name, subscribed))

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        return await self._read(mailboxes.mailbox_status(mailbox_id))

    # messages

    async def append(
        self,
        items: Sequence[tuple[int, NewMessage]],
        *,
        claim_recent: bool = False,
        seen_user: int | None = None,
    ) -> list[Appended]:
        if not items:
            return []
        # Shielded like every write: bodies written must be reaped even if the caller gives up.
        return await asyncio.shield(self._append(items, claim_recent, seen_user))

    async def _append(
        self, items: Sequence[tuple[int, NewMessage]], claim_recent: bool, seen_user: int | None
    ) -> list[Appended]:
        derived = messages.derived_of(items)  # outside the write transaction
        now = self._now()

        def script(triples: list[Triple], inline: dict[str, bytes]) -> Script[Done[list[Appended]]]:
            return messages.append(
                triples, inline, now, derived, claim_recent=claim_recent, seen_user=seen_user
            )

        return await self._with_bodies(items, script)

    async def replace(
        self,
        mailbox_id: int,
        uid: int,
        target: int,
        message: NewMessage,
        *,
        seen_user: int | None = None,
    ) -> tuple[Appended, list[Expunged]]:
        items = [(target, message)]
        derived = messages.derived_of(items)
        now = self._now()

        def script(
            triples: list[Triple], inline: dict[str, bytes]
        ) -> Script[Done[tuple[list[Appended], list[Expunged]]]]:
            return messages.replace(triples, inline, now, derived, mailbox_id, uid, seen_user)

        appended, gone = await asyncio.shield(self._with_bodies(items, script))
        return appended[0], gone

    async def _with_bodies(
        self,
        items: Sequence[tuple[int, NewMessage]],
        make: Callable[[list[Triple], dict[str, bytes]], Script[Done[T]]],
    ) -> T:
        """Runs ``make``'s script once the messages' bodies are durable (see the module
        docstring), with the retry that keeps a vanished body in the database."""
        bodies: dict[int, tuple[bytes, str]] = {}  # id(raw) -> (raw, blob id): one hash each
        for _, msg in items:
            if id(msg.raw) not in bodies:
                bodies[id(msg.raw)] = (msg.raw, await self._blob_id(msg.raw))
        distinct = {blob_id: raw for raw, blob_id in bodies.values()}
        inline = {b: raw for b, raw in distinct.items() if len(raw) <= self._inline_max}
        files = {b: raw for b, raw in distinct.items() if b not in inline}
        triples = [(box, msg, bodies[id(msg.raw)][1]) for box, msg in items]
        committed = False
        attempt = 1
        try:
            while True:
                # Durable before the transaction that points at them; in parallel threads.
                await asyncio.gather(*(self._blobs.put(raw, bid) for bid, raw in files.items()))
                try:
                    light = len(triples) <= LIGHT_ROWS
                    done = await self._write_now(make(triples, inline), light=light)
                except BodyMissing as e:
                    if attempt == _BODY_TRIES:
                        raise
                    attempt += 1
                    # Freed and deleted by another process since the put. Writing the file again
                    # could lose the same race again and again while others churn that body, so
                    # the retry keeps it in the database row instead, where nothing can delete it
                    # between the write and the commit: the retry cannot lose it twice.
                    for blob_id in e.blob_ids:
                        if blob_id in files:
                            inline[blob_id] = files.pop(blob_id)
                    continue
                committed = True
                return done
        finally:
            if files and not committed:
                await self._reap(list(files))  # written bodies nothing came to reference

    async def _blob_id(self, raw: bytes) -> str:
        if len(raw) <= self._HASH_INLINE:
            return self._blobs.blob_id(raw)
        return await asyncio.to_thread(self._blobs.blob_id, raw)

    async def list_messages(
        self, mailbox_id: int, uid_from: int = 1, uid_to: int | None = None
    ) -> list[MessageInfo]:
        return await self._read(messages.list_messages(mailbox_id, uid_from, uid_to))

    async def get_meta(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        stored = await self._read(messages.get_meta(mailbox_id, uids))
        unparsed = [uid for uid, meta in stored.items() if not meta]
        if unparsed:
            stored.update(await self._parse_stored(mailbox_id, unparsed))
        return stored

    async def _parse_stored(self, mailbox_id: int, uids: list[int]) -> dict[int, bytes]:
        """Parses messages stored without their parse ("Parsed on first need" above) from
        their bodies, and keeps each parse; a message expunged meanwhile is left out."""
        made: dict[int, bytes] = {}
        turn = TimeSlice()  # a long run of parses: other sessions go on between them
        for start in range(0, len(uids), _PARSE_BATCH):
            bodies = await self.read_messages(mailbox_id, uids[start : start + _PARSE_BATCH])
            parsed: dict[int, bytes] = {}
            for uid, raw in bodies.items():
                parsed[uid] = await parse_meta(raw)  # a large one in a thread
                await turn.step()
            if parsed:
                # Light: _PARSE_BATCH rows at most. Not durable: a parse lost in a power cut is
                # made again at the next need.
                await self._write(messages.set_meta(mailbox_id, parsed), durable=False, light=True)
            made.update(parsed)
        return made

    async def sort_keys(self, mailbox_id: int, uid_from: int = 1) -> dict[int, str]:
        rows = await self._read(messages.sort_keys(mailbox_id, uid_from))
        keys = {uid: k for uid, k in rows if k is not None}
        missing = [uid for uid, k in rows if k is None]
        for start in range(0, len(missing), _FILL_BATCH):  # short writes: others go between
            batch = missing[start : start + _FILL_BATCH]
            await self.get_meta(mailbox_id, batch)  # the keys are made from the parse
            # Not durable: keys lost in a power cut are made again at the next SORT.
            script = messages.fill_sort_keys(mailbox_id, batch)
            made: dict[int, str] = await self._write(script, durable=False)
            keys.update(made)
        return keys

    async def search_headers(self, mailbox_id: int, keys: Sequence[tuple[str, str]]) -> SearchHits:
        hits, missing = await self._read(messages.search_headers(mailbox_id, keys))
        if not missing:
            return SearchHits(hits, frozenset())
        for start in range(0, len(missing), _FILL_BATCH):  # short writes: others go between
            batch = missing[start : start + _FILL_BATCH]
            metas = await self.get_meta(mailbox_id, batch)
            made = {}
            for uid, meta in metas.items():
                _, texts = messages.derived_from_meta(meta)
                if texts is not None:  # an unreadable parse: the caller reads it, and fails
                    made[uid] = texts
            # Not durable: search texts lost in a power cut are made again at the next search.
            await self._write(messages.fill_search(mailbox_id, made), durable=False)
        hits, missing = await self._read(messages.search_headers(mailbox_id, keys))
        return SearchHits(hits, frozenset(missing))

    async def message_extras(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, MessageExtras]:
        return await self._read(messages.extras(mailbox_id, uids))

    async def set_previews(self, mailbox_id: int, previews: dict[int, str]) -> None:
        if previews:
            light = len(previews) <= LIGHT_ROWS
            await self._write(
                messages.set_previews(mailbox_id, previews), durable=False, light=light
            )

    async def read_message(self, mailbox_id: int, uid: int) -> bytes:
        blob_id, data = await self._read(messages.blob_of(mailbox_id, uid))
        if data is not None:  # kept in the database: no file to open
            return data
        try:
            return await self._blobs.get_apart(blob_id)
        except NotFound:  # expunged and reaped between the lookup and the read
            raise NotFound(f"no message {uid} in mailbox {mailbox_id}") from None

    async def read_messages(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        blobs = await self._read(messages.blobs_of(mailbox_id, uids))
        found: dict[int, bytes] = {}
        for uid, (blob_id, data) in blobs.items():
            if data is None:  # a file
                try:
                    data = await self._blobs.get_apart(blob_id)
                except NotFound:  # expunged and reaped between the lookup and the read
                    continue
            found[uid] = data
        return found

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: frozenset[str],
        *,
        unchanged_since: int | None = None,
    ) -> FlagsResult:
        script = messages.store_flags(mailbox_id, uids, op, flags, unchanged_since)
        return await self._write(script, durable=False, light=len(uids) <= LIGHT_ROWS)

    async def expunge(self, mailbox_id: int, uids: Sequence[int]) -> list[Expunged]:
        light = len(uids) <= LIGHT_ROWS
        return await self._write(messages.expunge(mailbox_id, uids), durable=False, light=light)

    async def expunge_deleted(
        self, mailbox_id: int, uids: Sequence[int] | None = None
    ) -> list[Expunged]:
        ranges = None if uids is None else uid_ranges(uids)
        light = False
        if self._driver.light_writes:  # a count first, when the driver can use the answer
            light = await self._read(messages.count_deleted(mailbox_id, ranges)) <= LIGHT_ROWS
        script = messages.expunge_deleted(mailbox_id, ranges)
        return await self._write(script, durable=False, light=light)

    async def copy(
        self,
        src_mailbox_id: int,
        uids: Sequence[int],
        dst_mailbox_id: int,
        *,
        seen_user: int | None = None,
        rights: str = "stw",
    ) -> Copied:
        return await self._copy(src_mailbox_id, uids, dst_mailbox_id, False, seen_user, rights)

    async def move(
        self,
        src_mailbox_id: int,
        uids: Sequence[int],
        dst_mailbox_id: int,
        *,
        seen_user: int | None = None,
        rights: str = "stw",
    ) -> Copied:
        return await self._copy(src_mailbox_id, uids, dst_mailbox_id, True, seen_user, rights)

    async def _copy(
        self,
        src: int,
        uids: Sequence[int],
        dst: int,
        move: bool,
        seen_user: int | None,
        rights: str,
    ) -> Copied:
        now = self._now().isoformat()
        script = messages.copy_messages(
            src, uid_ranges(uids), dst, move=move, now=now, seen_user=seen_user, rights=rights
        )
        return await self._write(script)

    async def changes_since(self, mailbox_id: int, modseq: int) -> list[MessageInfo]:
        return await self._read(messages.changes_since(mailbox_id, modseq))

    async def expunged_since(self, mailbox_id: int, modseq: int) -> list[Expunged]:
        return await self._read(messages.expunged_since(mailbox_id, modseq))

    async def mailbox_since(
        self, mailbox_id: int, modseq: int, *, changes: bool = False
    ) -> MailboxSince | None:
        return await self._read(mailboxes.mailbox_since(mailbox_id, modseq, changes))

    async def claim_recent(self, mailbox_id: int, up_to_uid: int) -> int:
        return await self._write(recent.claim_recent(mailbox_id, up_to_uid))

    async def recent_uid(self, mailbox_id: int) -> int:
        return await self._read(recent.recent_uid(mailbox_id))

    async def quota_usage(self, user_id: int) -> QuotaUsage:
        return await self._read(mailboxes.quota_usage(user_id))

    # access control lists (RFC 4314)

    async def get_acl(self, mailbox_id: int) -> list[AclEntry]:
        return await self._read(acl.get_acl(mailbox_id))

    async def set_acl(self, mailbox_id: int, grantee_id: int, rights: str) -> None:
        await self._write(acl.set_acl(mailbox_id, grantee_id, rights))

    async def get_metadata(self, mailbox_id: int, user_id: int) -> dict[str, bytes]:
        return await self._read(metadata.get_metadata(mailbox_id, user_id))

    async def set_metadata(
        self,
        mailbox_id: int,
        user_id: int,
        items: Sequence[tuple[str, bytes | None]],
        *,
        max_entries: int,
        max_bytes: int,
    ) -> None:
        await self._write(metadata.set_metadata(mailbox_id, user_id, items, max_entries, max_bytes))

    async def private_seen(self, mailbox_id: int, user_id: int) -> set[int]:
        return await self._read(seen_scripts.private_seen(mailbox_id, user_id))

    async def set_private_seen(
        self, mailbox_id: int, user_id: int, uids: Sequence[int], seen: bool
    ) -> list[int]:
        return await self._write(seen_scripts.set_private_seen(mailbox_id, user_id, uids, seen))

    async def urlauth_key(self, mailbox_id: int, new_key: bytes | None = None) -> bytes | None:
        if new_key is None:
            return await self._read(urlauth.get_key(mailbox_id))
        return await self._write(urlauth.make_key(mailbox_id, new_key))

    async def reset_urlauth_keys(self, user_id: int, mailbox_id: int | None = None) -> None:
        await self._write(urlauth.reset_keys(user_id, mailbox_id))

    async def shared_mailboxes(self, user_id: int) -> list[SharedMailbox]:
        return await self._read(acl.shared_mailboxes(user_id))

    async def shared_mailbox(self, user_id: int, owner: str, name: str) -> SharedMailbox | None:
        return await self._read(acl.shared_mailbox(user_id, owner, name))

    # coordination between processes and machines

    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        return await self._write(
            coordination.acquire_lease(name, owner, self._clock.now(), seconds)
        )

    async def release_lease(self, name: str, owner: str) -> None:
        await self._write(coordination.release_lease(name, owner))

    async def bump_counter(self, key: str, window_seconds: int) -> int:
        return await self._write(coordination.bump_counter(key, self._clock.now(), window_seconds))

    async def read_counter(self, key: str, window_seconds: int) -> int:
        return await self._read(coordination.read_counter(key, self._clock.now(), window_seconds))

    async def remember(self, key: str, seconds: float) -> None:
        await self._write(coordination.remember(key, self._clock.now(), seconds))

    async def remembered(self, key: str) -> float | None:
        return await self._read(coordination.remembered(key, self._clock.now()))
