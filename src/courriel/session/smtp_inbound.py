"""Port 25's verdict on a message: SPF, DKIM and DMARC applied to what the MX delivers.

Theory of operation
-------------------
An MX session (nobody is authenticated on port 25) calls ``judge`` once the whole message is
read and before anything is stored, so the client hears the verdict as the reply to its end
of data. ``judge`` asks the ``Checker`` (``courriel.mail.auth.inbound.MailAuth``) and applies the
``[mailauth]`` policy to its ``Verdict``:

==========  ===========================================================================
REJECT      550 5.7.1 with the verdict's sentence (RFC 7489 §6.6.4); with
            ``reject_on_dmarc_reject = false`` the message goes to Junk instead
DEFER       451 4.7.0: DNS did not answer, and its answer could change the verdict
JUNK        the recipients' Junk mailbox (``quarantine_to_junk``; else INBOX)
ACCEPT      INBOX
==========  ===========================================================================

What is stored is the verdict's message (earlier Authentication-Results fields claiming our
host name removed, RFC 8601 §5) with the new Authentication-Results field on top; the session
puts its trace fields above it. Each refusal and each message sent to Junk is logged with the
reason in words, so an administrator can answer "why did my mail bounce".

A checker that fails (a bug, not a DNS answer) defers the message (451): a wrong verdict is
worse than a retry, and the log line carries the traceback.

``deliver_junk`` stores the message in each recipient's mailbox with the ``\\Junk`` special-use
attribute (RFC 6154), else the one named Junk, else in a new ``Junk`` with the attribute,
subscribed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, assert_never

from courriel.config import MailAuthConfig
from courriel.logs import kv
from courriel.mail.auth.inbound import Action, Verdict
from courriel.mail.message import parse
from courriel.store.base import AlreadyExists, Appended, Mailbox, NewMessage, NotFound, Store
from courriel.wire.smtp import Reply

log = logging.getLogger("courriel.smtp")

JUNK = "Junk"
JUNK_USE = "\\Junk"  # RFC 6154 §2
CHECK_FAILED = Reply(451, "4.7.0", "the message could not be checked; try again later")
# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its code and CRLF.
_LINE = 400
_MAX_LINES = 4
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


class Checker(Protocol):
    async def check_inbound(
        self, *, ip: str, helo: str, mail_from: str, message: bytes
    ) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an accepted message goes, and the bytes to store (trace fields not included)."""

    message: bytes
    junk: bool = False
    # The SPF, DKIM and DMARC results and why the message goes to Junk, for the junk score;
    # details of the placement, not part of where it goes.
    verdict: Verdict | None = field(default=None, compare=False)
    why: str = field(default="", compare=False)


def refusal(code: int, enhanced: str, text: str) -> Reply:
    """A reply carrying ``text`` in printable ASCII, wrapped to lines SMTP allows."""
    clean = _UNPRINTABLE.sub("?", " ".join(text.split())) or "refused"
    lines = textwrap.wrap(clean, _LINE, break_long_words=True) or [clean]
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], lines[_MAX_LINES - 1][: _LINE - 3] + "..."]
    return Reply(code, enhanced, lines[0], tuple(lines[1:]))


async def judge(
    checker: Checker,
    policy: MailAuthConfig,
    *,
    ip: str,
    helo: str,
    mail_from: str,
    message: bytes,
) -> Reply | Placement:
    """The reply refusing the message, or where to put it; see the module docstring."""
    try:
        v = await checker.check_inbound(ip=ip, helo=helo, mail_from=mail_from, message=message)
    except Exception:
        log.exception("message deferred: the authentication checks failed")
        return CHECK_FAILED
    stored = v.header + v.message
    where = kv(ip=ip, helo=helo, sender=mail_from)
    match v.action:
        case Action.ACCEPT:
            return Placement(stored, verdict=v)
        case Action.DEFER:
            log.info("message deferred: %s", v.text, extra=where)
            return refusal(451, "4.7.0", v.text)  # RFC 7489 §6.6.3: temperror, try later
        case Action.REJECT if policy.reject_on_dmarc_reject:
            log.info("message refused: %s", v.text, extra=where)
            return refusal(550, "5.7.1", v.text)  # RFC 7489 §10.3
        case Action.REJECT | Action.JUNK:
            junk = policy.quarantine_to_junk or v.action is Action.REJECT
            if junk:
                log.info("message sent to Junk: %s", v.text, extra=where)
            return Placement(stored, junk=junk, verdict=v, why=v.text if junk else "")
        case _:
            assert_never(v.action)


async def junk_mailbox(store: Store, user_id: int) -> Mailbox:
    """The user's Junk mailbox, made (``\\Junk``, subscribed) when there is none."""
    boxes = await store.list_mailboxes(user_id)
    for box in boxes:
        if JUNK_USE in (box.special_use or "").split():
            return box
    for box in boxes:
        if box.name.lower() == JUNK.lower():
            return box
    with contextlib.suppress(AlreadyExists):  # another session made it meanwhile
        # RFC 6154 §5.1: the attribute is given when the mailbox is created.
        await store.create_mailbox(user_id, JUNK, special_use=JUNK_USE)
        await store.set_subscribed(user_id, JUNK, True)
    made = await store.get_mailbox(user_id, JUNK)
    if made is None:  # the user was removed meanwhile
        raise NotFound(f"user {user_id} has no {JUNK} mailbox")
    return made


async def deliver_junk(
    store: Store, user_ids: Sequence[int], raw: bytes, now: datetime
) -> list[Appended]:
    """``courriel.queue.local.deliver_local``, into each user's Junk mailbox: one durable
    ``append`` for every recipient, all or nothing."""
    message = NewMessage(raw=raw, internal_date=now, meta=parse(raw).to_bytes())
    boxes = [(await junk_mailbox(store, u)).id for u in dict.fromkeys(user_ids)]
    return await store.append([(box, message) for box in boxes])
