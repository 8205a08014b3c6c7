"""Local delivery: one durable store call puts a message in the INBOX of every local recipient.

Theory of operation
-------------------
The message arrives with its trace fields already on top (``courriel.mail.delivery``). It is
stored unparsed (the store parses it on first need: ``courriel.store.base``) and appended to
the INBOX of every recipient in *one* ``Store.append`` call: all or nothing, durable on
return. The store keeps the identical body once and commits many sessions' deliveries
together (group commit), which is what makes the acknowledgement cheap.

This is delivery without filtering: the SMTP session and the queue worker deliver through each
recipient's Sieve script and tag folders (``courriel.queue.filtering``), which comes here for
redirected copies and for the bounces and answers it sends itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from courriel.store.base import Appended, MailStore, NewMessage, NotFound

INBOX = "INBOX"


async def deliver_local(
    store: MailStore, user_ids: Sequence[int], raw: bytes, now: datetime | None = None
) -> list[Appended]:
    """Stores ``raw`` (trace headers included) in each user's INBOX with one ``append`` call.

    Durable when it returns; raises ``OverQuota``, ``Unavailable`` or ``NotFound`` (a user
    removed since RCPT), having stored nothing.
    """
    when = now or datetime.now(UTC)
    message = NewMessage(raw=raw, internal_date=when)
    items: list[tuple[int, NewMessage]] = []
    for user_id in dict.fromkeys(user_ids):
        inbox = await store.get_mailbox(user_id, INBOX)
        if inbox is None:
            raise NotFound(f"user {user_id} has no INBOX")
        items.append((inbox.id, message))
    if not items:
        return []
    return await store.append(items)
