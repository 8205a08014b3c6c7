"""What a Sieve run decides: the actions, as plain records for delivery to carry out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keep:
    """Store in INBOX (RFC 5228 §4.3); also the implicit keep."""

    flags: frozenset[str] = frozenset()
    implicit: bool = False


@dataclass(frozen=True, slots=True)
class FileInto:
    mailbox: str  # UTF-8 name with "/" as the hierarchy delimiter (RFC 5228 §4.1)
    flags: frozenset[str] = frozenset()
    create: bool = False  # RFC 5490 §3.2: make the mailbox if it is missing


@dataclass(frozen=True, slots=True)
class Discard:
    """RFC 5228 §4.4: cancels the implicit keep; nothing is stored."""


@dataclass(frozen=True, slots=True)
class Redirect:
    address: str
    copy: bool = False  # RFC 3894: the implicit keep stays


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str
    extended: bool  # ereject (RFC 5429 §2.1): refuse at SMTP time where possible


@dataclass(frozen=True, slots=True)
class Vacation:
    """RFC 5230: an answer to the sender, once per ``days`` (decided by delivery)."""

    reason: str
    days: int
    subject: str | None = None
    from_address: str | None = None
    addresses: tuple[str, ...] = ()
    mime: bool = False
    handle: str = ""


Action = Keep | FileInto | Discard | Redirect | Reject | Vacation
