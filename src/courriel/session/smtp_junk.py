"""Port 25's junk filtering in the SMTP session: refusals before the message, Junk after it.

Theory of operation
-------------------
``JunkServices`` bundles what ``[junk]`` asks of an MX session (``courriel.junk``):

* the connection checks' refusal (DNS blocklists, forward-confirmed reverse DNS: found while
  the greeting waits, ``net/smtp.py``) and the HELO check's are kept by the session and given
  as the answer to each RCPT, so the client hears and logs them -- except for RCPT to
  postmaster, which RFC 5321 §4.5.1 wants accepted, so a listed sender can reach a person;
* ``greylisted`` answers a recipient of an unknown (network, sender, recipient) triple with
  451 4.7.1 (RFC 6647 §2.1 describes the practice), from a table in the store that every node
  shares; a store failure lets the mail through rather than stall it;
* ``scored_copies`` makes each local recipient's copy with its own X-Spam fields and score;
  ``store_copies`` stores them in INBOX or, at or above the recipient's threshold (or when
  DMARC said quarantine), in Junk, in one ``Store.append``: all or nothing, as
  ``deliver_local``. With Sieve (``courriel.queue.filtering``), the session hands the copies
  that stay out of Junk to the recipients' scripts instead, which see those fields.

The message is parsed once (``courriel.junk.filter.examine``): the scoring reads that parse,
and each copy's stored parse is the same one moved past the copy's own trace and X-Spam fields
(``courriel.mail.message.prefixed``), so no copy is parsed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from courriel.config import JunkConfig
from courriel.junk.checks import ConnectionChecks, greylist_triple
from courriel.junk.filter import Arrival, JunkFilter, examine
from courriel.junk.score import Score, fields, strip_spam_fields
from courriel.logs import kv
from courriel.mail.delivery import parse_meta
from courriel.mail.message import MessageMeta, prefixed
from courriel.session.smtp_inbound import Placement, junk_mailbox
from courriel.store.base import Appended, NewMessage, NotFound, Store, StoreError
from courriel.wire.smtp import Reply

log = logging.getLogger("courriel.smtp")

INBOX = "INBOX"


@dataclass(frozen=True, slots=True)
class JunkServices:
    cfg: JunkConfig
    checks: ConnectionChecks
    filter: JunkFilter | None  # None: messages are not scored


async def greylisted(
    store: Store, cfg: JunkConfig, ip: str, sender: str, recipient: str
) -> Reply | None:
    """451 4.7.1 while the triple must wait, else None (see the module docstring)."""
    if not cfg.greylist:
        return None
    try:
        wait = await store.greylist_check(
            greylist_triple(ip, sender, recipient),
            time.time(),
            delay=cfg.greylist_delay_seconds,
            retry_window=cfg.greylist_retry_seconds,
            pass_seconds=cfg.greylist_pass_seconds,
        )
    except (StoreError, ValueError):
        return None
    if wait <= 0:
        return None
    seconds = max(1, round(wait))
    log.info(
        "recipient greylisted: first mail from this sender to this address",
        extra=kv(ip=ip, sender=sender, rcpt=recipient, wait=seconds),
    )
    # RFC 6647 §2.1: a temporary failure the sender's queue will retry.
    return Reply(451, "4.7.1", f"greylisted: please try again in {seconds} seconds")


@dataclass(frozen=True, slots=True)
class Copy:
    """One recipient's copy: the message with that recipient's X-Spam fields, and its score."""

    user_id: int
    raw: bytes
    score: Score
    meta: bytes | None = None  # the stored parse of ``raw`` when known (else parsed to store)


async def scored_copies(
    junk: JunkFilter,
    users: Mapping[int, str],
    trace: bytes,
    placed: Placement,
    arrival: Arrival,
    now: datetime,
) -> list[Copy]:
    """Scores the message for each user (id -> the recipient domain that led to them); each
    copy carries its explanation right above Authentication-Results, and fields of those names
    that came with the message are gone. Users whose domain's policy sends the message to Junk
    (``Placement.to_junk``) get it there whatever their score, with the checks' reason."""
    message = strip_spam_fields(placed.message)
    forced = [u for u, domain in users.items() if placed.to_junk(domain)]
    scored = [u for u in users if u not in forced]
    content = await examine(message, now) if junk.reads_content else None
    metas: dict[bytes, bytes | None] = {}
    copies = []
    for group, why in ((forced, placed.why or "domain policy"), (scored, "")):
        if not group:
            continue
        scores = await junk.score(
            group, message, placed.verdict, arrival, now, forced=why, content=content
        )
        for user_id, score in scores.items():
            prefix = trace + fields(score)
            if prefix not in metas:
                metas[prefix] = _meta(message, None if content is None else content.meta, prefix)
            copies.append(Copy(user_id, prefix + message, score, metas[prefix]))
            _log(user_id, score, arrival)
    return copies


def _meta(message: bytes, meta: MessageMeta | None, prefix: bytes) -> bytes | None:
    """The stored parse of ``prefix + message`` from the parse of ``message``."""
    if meta is None:
        return None
    moved = prefixed(message, meta, prefix)
    return None if moved is None else moved.to_bytes()


async def store_copies(store: Store, copies: Sequence[Copy], now: datetime) -> list[Appended]:
    """Each copy in INBOX or, scored as junk, in Junk: one ``Store.append``, all or nothing."""
    made: dict[bytes, NewMessage] = {}
    items: list[tuple[int, NewMessage]] = []
    for copy in copies:
        if copy.raw not in made:
            meta = copy.meta if copy.meta is not None else await parse_meta(copy.raw)
            made[copy.raw] = NewMessage(raw=copy.raw, internal_date=now, meta=meta)
        items.append((await _mailbox(store, copy.user_id, copy.score), made[copy.raw]))
    if not items:
        return []
    return await store.append(items)


async def _mailbox(store: Store, user_id: int, score: Score) -> int:
    if score.junk:
        return (await junk_mailbox(store, user_id)).id
    inbox = await store.get_mailbox(user_id, INBOX)
    if inbox is None:
        raise NotFound(f"user {user_id} has no INBOX")
    return inbox.id


def _log(user_id: int, score: Score, arrival: Arrival) -> None:
    if not score.junk:
        return
    why = score.forced or "; ".join(f"{r.name} {r.points:+.1f}: {r.text}" for r in score.reasons)
    log.info(
        "message sent to Junk: score %.1f, threshold %.1f: %s",
        score.points,
        score.threshold,
        why,
        extra=kv(user=user_id, ip=arrival.ip, sender=arrival.sender),
    )
