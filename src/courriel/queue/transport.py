"""What the relay queue asks of whatever carries a message to another server.

Theory of operation
-------------------
The queue worker (``courriel.queue.worker``) decides *when* to try a message and *what* to do
with each outcome (retry, bounce, done); a ``Transport`` decides *how* to hand one message to one
destination domain: find its mail exchangers (or the configured smarthost), apply the TLS policy
(opportunistic STARTTLS, MTA-STS, DANE), speak SMTP, and report one ``Outcome`` per recipient.

A transport never raises for a delivery failure: a host that is down, a TLS policy that cannot be
met, a remote 4xx or 5xx are all outcomes, with a sentence a person can read (it ends up in the
queue listing and in the bounce). It may keep connections open between calls and reuse them for
the next message to the same host; ``close`` ends them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from courriel.queue.outbound import Recipient


class Status(enum.Enum):
    DELIVERED = "delivered"  # the remote server answered 250 to the end of data
    TEMPORARY = "temporary"  # try again later (4xx, no answer, TLS could not be negotiated...)
    PERMANENT = "permanent"  # give up on this recipient now and bounce (5xx, null MX, ...)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result for one recipient of one attempt."""

    recipient: str
    status: Status
    text: str  # plain words: the remote reply quoted, or why no server was reached
    code: int | None = None  # the remote SMTP reply code, when a server answered
    enhanced: str = ""  # RFC 3463 status ("5.1.1"), the remote one or ours
    remote_host: str = ""  # "mx.example.org [192.0.2.1]" when a server was reached


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message for the recipients of one destination domain."""

    sender: str  # "" for the null reverse-path (bounces)
    recipients: tuple[Recipient, ...]  # all at the same domain
    message: bytes  # the full message as it will be sent, CRLF line ends
    ret: str | None = None  # RFC 3461 RET, passed on when the next hop offers DSN
    envid: str | None = None  # RFC 3461 ENVID
    smtputf8: bool = False  # needs a next hop that offers SMTPUTF8 (RFC 6531)
    eight_bit: bool = False  # the body is 8BITMIME
    requiretls: bool = False  # RFC 8689: refuse any hop without verified TLS
    queue_id: str = ""  # for log lines only


class Transport(Protocol):
    async def deliver(self, domain: str, message: OutboundMessage) -> Sequence[Outcome]:
        """Tries ``message`` at ``domain`` (an A-label); one outcome per recipient, same order."""

    async def close(self) -> None:
        """Ends every kept connection."""
