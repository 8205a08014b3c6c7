"""SMTP policy decisions that need the store: who may relay, who owns which address.

Theory of operation
-------------------
``classify_recipient`` turns one RCPT forward-path into a ``RecipientVerdict``: the local users
it reaches (through ``accounts.resolve``: users, aliases, plus-addresses, catch-all), the remote
addresses it leads to, or the reply refusing it. The rules, in order:

1. a local part holding a routing character (``%``, ``!``, a quoted ``@``) is refused, because
   honouring it would pass mail on to another host (RFC 5321 §3.6.1, RFC 2505 §2.6). Source
   routes were already stripped by the core (RFC 5321 §4.1.1.3), so ``<@ours:user@other>`` is
   judged as ``user@other``: a remote address;
2. address literals are never local here;
3. a domain we do not host is a relay request: the MX refuses it (554 5.7.1), an authenticated
   submission session asks the outbound queue;
4. a hosted domain resolves to users (each checked against its quota, 452 4.2.2), to remote
   alias targets (which need the queue too: a forward that cannot be queued is refused rather
   than dropped) or to nothing (550 5.1.1, or 550 5.4.6 for an alias loop).

``owns`` decides whether an authenticated user may use an address as envelope sender or in
From: their own address, its plus-addressed forms, and aliases whose expansion reaches them. A
catch-all does not count: it would let one user send as every address of a domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.accounts.resolve import Outcome, resolve_recipient
from courriel.mail.address import Address, AddressError, parse_address, plain_mailbox, split_plus
from courriel.queue.outbound import Queue
from courriel.store.base import Store, User
from courriel.wire.smtp import Path, Reply

RELAY_DENIED = "relay access denied: this server only accepts mail for its own domains"
ROUTING_REFUSED = Reply(
    554, "5.7.1", "relay access denied: addresses with %, ! or a quoted @ are not accepted"
)
UNKNOWN_USER = Reply(550, "5.1.1", "no mailbox here by that name: check the address")
ALIAS_LOOP = Reply(550, "5.4.6", "the aliases for this address form a loop: tell the postmaster")
NOT_OWNER = Reply(550, "5.7.1", "you may only send as addresses you own")
FROM_NOT_OWNER = Reply(
    550, "5.7.1", "you may only send as addresses you own: the From header names another address"
)
NO_FROM = Reply(550, "5.6.0", "the message has no From header field: add one with your address")
OVER_QUOTA = Reply(452, "4.2.2", "the recipient's mailbox is full: try again later")
NEVER_FITS = Reply(552, "5.2.2", "the message is larger than the recipient's whole mailbox quota")
MESSAGE_OVER_QUOTA = Reply(
    452, "4.2.2", "a recipient's mailbox is full: nothing was delivered, try again later"
)
NEVER_FITS_DATA = Reply(
    552,
    "5.2.2",
    "the message is larger than a recipient's whole mailbox quota: nothing was delivered",
)
TEMPORARY = Reply(451, "4.3.0", "temporary server failure, try again later")


@dataclass(frozen=True, slots=True)
class RecipientVerdict:
    """Where one RCPT leads, or the refusal (``reply`` set)."""

    address: str = ""  # the normalised address
    user_ids: tuple[int, ...] = ()
    remote: tuple[str, ...] = ()
    reply: Reply | None = None
    tag: str | None = None  # the +tag of the address (RFC 5233), for Sieve and tag folders


def relay_denied(domain: str) -> Reply:
    return Reply(554, "5.7.1", f"{RELAY_DENIED} ({domain[:100]} is not one of them)")


def _queue_reply(refusal_temporary: bool, enhanced: str, text: str) -> Reply:
    return Reply(451 if refusal_temporary else 550, enhanced, text)


async def _queue_refusal(queue: Queue, addresses: tuple[str, ...]) -> Reply | None:
    for address in addresses:
        refusal = await queue.check(address)
        if refusal is not None:
            return _queue_reply(refusal.temporary, refusal.enhanced, refusal.text)
    return None


async def _quota_refusal(store: Store, user_ids: tuple[int, ...], size: int) -> Reply | None:
    for user_id in user_ids:
        usage = await store.quota_usage(user_id)
        if usage.limit_bytes is not None and size > usage.limit_bytes:
            return NEVER_FITS  # RFC 3463 5.2.2: no amount of deleting makes room
        if usage.limit_bytes is not None and usage.bytes + size >= usage.limit_bytes:
            return OVER_QUOTA  # RFC 3463 4.2.2: mailbox full, per recipient at RCPT time
        if usage.limit_messages is not None and usage.messages >= usage.limit_messages:
            return OVER_QUOTA  # RFC 9208 §5.2: the MESSAGE resource is used up
    return None


async def over_quota_reply(store: Store, user_ids: tuple[int, ...], size: int) -> Reply:
    """Why a delivery was refused as over quota: 552 5.2.2 when the message is larger than a
    recipient's whole quota (it never fits), else 452 4.2.2 (it will once mail is deleted)."""
    for user_id in user_ids:
        limit = (await store.quota_usage(user_id)).limit_bytes
        if limit is not None and size > limit:
            return NEVER_FITS_DATA
    return MESSAGE_OVER_QUOTA


async def _postmaster(store: Store, hostname: str) -> Address:
    """RFC 5321 §4.1.1.3, §4.5.1: ``<Postmaster>`` without a domain must be accepted.

    It is postmaster@ our host name when that is a hosted domain, else the postmaster of the
    first hosted domain that has one; failing both, postmaster@ our host name (unknown user).
    """
    candidates = [hostname] + [d.name for d in await store.list_domains()]
    for domain in candidates:
        try:
            address = parse_address(f"postmaster@{domain}")
        except AddressError:
            continue
        if (await resolve_recipient(store, address)).accepted:
            return address
    return parse_address(f"postmaster@{hostname}")


async def classify_recipient(
    store: Store,
    queue: Queue,
    path: Path,
    *,
    may_relay: bool,
    hostname: str,
    declared_size: int = 0,
) -> RecipientVerdict:
    """Where ``path`` leads (see the module docstring); never raises for bad addresses."""
    try:
        address = plain_mailbox(path.mailbox) if path.domain else await _postmaster(store, hostname)
    except AddressError:
        if path.quoted or any(c in path.local_part for c in "%!@"):
            return RecipientVerdict(reply=ROUTING_REFUSED)  # RFC 5321 §3.6.1
        return RecipientVerdict(reply=Reply(501, "5.1.3", "bad recipient address syntax"))
    if address.is_literal:
        return RecipientVerdict(reply=relay_denied(address.domain))
    resolution = await resolve_recipient(store, address)
    text = str(address)
    if resolution.outcome is Outcome.NOT_LOCAL:
        if not may_relay:
            return RecipientVerdict(reply=relay_denied(address.domain))  # RFC 5321 §3.6.2
        refusal = await _queue_refusal(queue, (text,))
        return RecipientVerdict(text, remote=(text,), reply=refusal)
    if resolution.outcome is Outcome.UNKNOWN_USER:
        return RecipientVerdict(reply=UNKNOWN_USER)
    if resolution.outcome is Outcome.ALIAS_LOOP:
        return RecipientVerdict(reply=ALIAS_LOOP)
    refusal = await _quota_refusal(store, resolution.user_ids, declared_size)
    if refusal is None and resolution.remote:
        refusal = await _queue_refusal(queue, resolution.remote)
    return RecipientVerdict(text, resolution.user_ids, resolution.remote, refusal, resolution.tag)


def _same(a: Address, b: Address) -> bool:
    return a.domain == b.domain and a.local.lower() == b.local.lower()


async def owns(store: Store, user: User, text: str) -> bool:
    """Whether ``user`` may send as ``text`` (see the module docstring)."""
    try:
        address = plain_mailbox(text)
        own = parse_address(user.address)
    except AddressError:
        return False
    base, tag = split_plus(address.local)
    candidates = [address] if tag is None else [address, Address(base, address.domain)]
    for candidate in candidates:
        if _same(candidate, own):
            return True
        if await store.alias_targets(str(candidate)):
            resolution = await resolve_recipient(store, candidate)
            if user.id in resolution.user_ids:
                return True
    return False
