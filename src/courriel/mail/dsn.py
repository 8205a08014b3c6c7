"""Delivery status notifications (RFC 3464): the bounce a person reads and a program parses.

Theory of operation
-------------------
``build`` turns one ``Notice`` (what happened to some recipients of one message) into a whole
message, ready to be stored or queued, in the RFC 6522 ``multipart/report`` form:

1. a ``text/plain`` part that says in plain words what happened to each recipient: refused by
   the recipient's server (its reply quoted as it came), could not be reached or found, TLS
   policy not met (the transport's own sentence), given up after so many days, still being
   tried, or delivered;
2. a ``message/delivery-status`` part (RFC 3464 §2): per-message fields (Reporting-MTA,
   Original-Envelope-Id, Arrival-Date), then per recipient Final-Recipient, Original-Recipient
   (from ORCPT), Action, Status, Remote-MTA, Diagnostic-Code (the SMTP reply), Last-Attempt-Date
   and, for a delay, Will-Retry-Until;
3. the original message (``message/rfc822``) or only its header (``text/rfc822-headers``), as
   RET asked (RFC 3461 §4.3). Without RET, failures return the whole message (up to
   ``MAX_RETURNED`` bytes) and delay and success notices only its header.

A message that was sent with SMTPUTF8 is reported with the RFC 6533 types
(``message/global-delivery-status``, ``message/global``, ``message/global-headers``), since its
addresses and header may not be ASCII.

The notice comes from ``MAILER-DAEMON@<hostname>``, carries ``Auto-Submitted: auto-replied``
(RFC 3834 §5) and is sent with the null reverse-path by the caller (RFC 5321 §4.5.5), so it is
never answered by another notice. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import secrets
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

MAX_RETURNED = 1024 * 1024  # a larger original is returned as its header only
_WIDTH = 76


class Action(enum.Enum):
    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class RecipientNotice:
    address: str  # the forward-path the message was queued for
    action: Action
    status: str  # RFC 3463 code, e.g. "5.1.1"
    reason: str = ""  # plain words from the transport, or why we gave up
    code: int | None = None  # the remote server's reply code, when one answered
    remote_host: str = ""  # "mx.example.org [192.0.2.1]"
    orcpt: str | None = None  # RFC 3461 ORCPT as "type;address"
    last_attempt: float | None = None
    expired_after: float | None = None  # seconds in the queue, when we gave up
    retry_until: float | None = None  # for a delay: when we will give up


@dataclass(frozen=True, slots=True)
class Notice:
    hostname: str  # the reporting MTA: this server
    sender: str  # who gets the notice: the original envelope sender
    recipients: tuple[RecipientNotice, ...]
    original: bytes
    arrival: float  # when the message was accepted
    queue_id: str = ""
    envid: str | None = None  # RFC 3461 ENVID
    ret: str | None = None  # RFC 3461 RET: FULL | HDRS
    smtputf8: bool = False


# --- the human-readable part ---------------------------------------------------------------


def _when(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC))


def describe_seconds(seconds: float) -> str:
    """ "5 days", "4 hours", "90 seconds": a duration in the words of a notice."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size < size / 10:
            n = round(seconds / size)
            return f"{n} {unit}{'' if n == 1 else 's'}"
    n = round(seconds)
    return f"{n} second{'' if n == 1 else 's'}"


def _quoted_reply(r: RecipientNotice) -> str:
    lines = [f"{r.code} {r.reason}".rstrip()] if r.code is not None else [r.reason]
    return "\n".join("    " + line for line in lines)


def explain(r: RecipientNotice) -> str:
    """One paragraph about one recipient, in plain words."""
    server = f"the recipient's mail server ({r.remote_host})" if r.remote_host else "the server"
    if r.action is Action.DELIVERED:
        where = f" to {r.remote_host}" if r.remote_host else ""
        return _wrap(f"<{r.address}>: delivered{where}.")
    if r.action is Action.DELAYED:
        until = f" until {_when(r.retry_until)}" if r.retry_until else ""
        head = f"<{r.address}>: not delivered yet. courriel keeps trying{until}; you need do "
        head += "nothing now. The last attempt failed"
        return _last_problem(head, r, server)
    if r.expired_after is not None:
        tried = describe_seconds(r.expired_after)
        head = f"<{r.address}>: courriel kept trying for {tried} and gave up."
        return _last_problem(head + " The last attempt failed", r, server)
    if r.code is not None:
        text = f"<{r.address}>: {server} refused the message. It replied:"
        return _wrap(text) + "\n\n" + _quoted_reply(r)
    return _wrap(f"<{r.address}>: the message could not be delivered: {r.reason}")


def _last_problem(head: str, r: RecipientNotice, server: str) -> str:
    if r.code is not None:
        return _wrap(f"{head}: {server} replied:") + "\n\n" + _quoted_reply(r)
    return _wrap(f"{head}: {r.reason or 'no reason was given'}")


def _wrap(text: str) -> str:
    return textwrap.fill(text, _WIDTH, break_long_words=False, break_on_hyphens=False)


def human_text(notice: Notice) -> str:
    actions = {r.action for r in notice.recipients}
    intro = f"This is the mail system at {notice.hostname}."
    if Action.FAILED in actions:
        lead = "Your message could not be delivered to one or more recipients."
    elif Action.DELAYED in actions:
        lead = "Your message has not been delivered yet to one or more recipients."
    else:
        lead = "Your message was delivered, as you asked to be told."
    parts = [intro, "", _wrap(lead), ""]
    for r in notice.recipients:
        parts += [explain(r), ""]
    if Action.FAILED in actions:
        parts.append(_wrap("The original message, or its header, is attached below."))
    return "\n".join(parts) + "\n"


# --- the machine-readable part -----------------------------------------------------------------


def _field(name: str, value: str) -> str:
    # Field values come from remote servers: keep them on one line (RFC 3464 §2.1.1).
    return f"{name}: {' '.join(value.split())}"


def _address_type(address: str) -> str:
    return "rfc822" if address.isascii() else "utf-8"  # RFC 6533 §3


def _remote_mta(remote_host: str) -> str:
    return remote_host.split(" ", 1)[0]


def delivery_status(notice: Notice) -> str:
    """The RFC 3464 §2.2-2.3 fields: one per-message block, one block per recipient."""
    blocks = [
        [
            _field("Reporting-MTA", f"dns; {notice.hostname}"),
            *([_field("Original-Envelope-Id", notice.envid)] if notice.envid else []),
            *([_field("X-Courriel-Queue-ID", notice.queue_id)] if notice.queue_id else []),
            _field("Arrival-Date", _when(notice.arrival)),
        ]
    ]
    for r in notice.recipients:
        block = [_field("Final-Recipient", f"{_address_type(r.address)}; {r.address}")]
        if r.orcpt:
            kind, _, addr = r.orcpt.partition(";")
            block.append(_field("Original-Recipient", f"{kind}; {addr}"))  # RFC 3461 §4.2
        block += [_field("Action", r.action.value), _field("Status", r.status)]
        if r.remote_host:
            block.append(_field("Remote-MTA", f"dns; {_remote_mta(r.remote_host)}"))
        if r.code is not None:
            block.append(_field("Diagnostic-Code", f"smtp; {r.code} {r.reason}"))
        if r.last_attempt is not None:
            block.append(_field("Last-Attempt-Date", _when(r.last_attempt)))
        if r.retry_until is not None and r.action is Action.DELAYED:
            block.append(_field("Will-Retry-Until", _when(r.retry_until)))
        blocks.append(block)
    return "\r\n\r\n".join("\r\n".join(b) for b in blocks) + "\r\n"


# --- the whole message -------------------------------------------------------------------------


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _header_of(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 2]


def _returned(notice: Notice) -> tuple[str, bytes]:
    """The content type and bytes of the third part."""
    whole = notice.ret == "FULL" or (
        notice.ret is None and any(r.action is Action.FAILED for r in notice.recipients)
    )
    if whole and len(notice.original) <= MAX_RETURNED:
        return ("message/global" if notice.smtputf8 else "message/rfc822"), notice.original
    kind = "message/global-headers" if notice.smtputf8 else "text/rfc822-headers"
    return kind, _header_of(notice.original)


def subject(recipients: Sequence[RecipientNotice]) -> str:
    actions = {r.action for r in recipients}
    if Action.FAILED in actions:
        return "Undelivered Mail Returned to Sender"
    if Action.DELAYED in actions:
        return "Delayed Mail (still being retried)"
    return "Successful Mail Delivery Report"


def build(notice: Notice, now: float) -> bytes:
    """The notification as a complete message with CRLF line ends."""
    boundary = f"=_courriel_{secrets.token_hex(12)}"
    status_type = "message/global-delivery-status" if notice.smtputf8 else "message/delivery-status"
    returned_type, returned = _returned(notice)
    text = human_text(notice)
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{notice.hostname}>",
        f"To: <{notice.sender}>",
        f"Subject: {subject(notice.recipients)}",
        f"Date: {_when(now)}",
        f"Message-ID: <{secrets.token_hex(16)}@{notice.hostname}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5: no automatic answer to this
        "MIME-Version: 1.0",
        # RFC 6522 §3: report-type names the second part.
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    cte = "7bit" if text.isascii() else "8bit"
    out = _crlf("\n".join(head) + "\n\nThis is a delivery status notification (RFC 3464).\n")
    out += _crlf(f"\n--{boundary}\nContent-Type: text/plain; charset=utf-8\n")
    out += _crlf(f"Content-Transfer-Encoding: {cte}\n\n{text}")
    out += _crlf(f"\n--{boundary}\nContent-Type: {status_type}\n\n")
    out += delivery_status(notice).encode("utf-8")
    original_cte = "7bit" if returned.isascii() else "8bit"
    out += _crlf(f"\n--{boundary}\nContent-Type: {returned_type}\n")
    out += _crlf(f"Content-Transfer-Encoding: {original_cte}\n\n")
    out += returned
    if not returned.endswith(b"\r\n"):
        out += b"\r\n"
    out += _crlf(f"\n--{boundary}--\n")
    return out
