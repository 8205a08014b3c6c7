"""Contract: an append may claim \\Recent for its caller in its own transaction (RFC 3501
§2.3.2), so an IMAP APPEND to the selected mailbox needs no second write for it."""

from __future__ import annotations

from collections.abc import Callable

from courriel.store.base import Mailbox, NewMessage, Store

MakeMessage = Callable[..., NewMessage]


async def test_an_append_claims_recent_only_when_asked(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    make_message = message
    await store.append([(inbox.id, make_message(1))])
    assert await store.recent_uid(inbox.id) == 0  # a delivery claims nothing
    appended = await store.append(
        [(inbox.id, make_message(2)), (inbox.id, make_message(3))], claim_recent=True
    )
    assert [a.uid for a in appended] == [2, 3]
    assert await store.recent_uid(inbox.id) == 3
    # A later claim by a session that selects the mailbox finds them taken.
    assert await store.claim_recent(inbox.id, 3) == 3
