"""Whether a vacation action answers a message, and the answer (RFC 5230, RFC 3834).

Theory of operation
-------------------
``refusal`` says in words why a message must not be answered, or returns None: never a null
sender or a bounce address (RFC 5230 §4.6, RFC 3834 §2), never a message that was itself
automatic (Auto-Submitted other than "no", RFC 3834 §5), never a mailing list (List-* fields,
Precedence bulk/list/junk; RFC 3834 §3.1.8), never the user's own mail, and only when one of
the user's addresses is in To, Cc, Bcc or their Resent- forms (RFC 5230 §4.5). The "once per
sender per :days" rule needs memory across messages and processes, so delivery keeps it in the
store; ``memory_key`` names what it remembers. ``reply`` builds the answer.
"""

from __future__ import annotations

import email.utils
import secrets
from datetime import datetime
from email.header import Header

from courriel.sieve.actions import Vacation
from courriel.sieve.message import MessageView

_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
_LIST_FIELDS = ("list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post")
_BOUNCE_LOCALS = ("mailer-daemon", "listserv", "majordomo", "postmaster")  # RFC 5230 §4.6


def _local(address: str) -> str:
    return address.rpartition("@")[0].lower()


def refusal(view: MessageView, own: list[str]) -> str | None:
    """Why ``view`` gets no vacation answer, or None. ``own``: the user's addresses."""
    sender = view.envelope.sender
    if not sender:
        return "the sender is the null reverse-path (a bounce)"  # RFC 3834 §2
    local = _local(sender)
    if local in _BOUNCE_LOCALS or local.startswith("owner-") or local.endswith("-request"):
        return f"the sender {sender} is an automatic or list address"  # RFC 5230 §4.6
    for value in view.headers("auto-submitted"):
        if value.split(";")[0].strip().lower() != "no":
            return "the message was itself sent automatically (Auto-Submitted)"  # RFC 3834 §5
    if any(view.headers(name) for name in _LIST_FIELDS):
        return "the message came from a mailing list"  # RFC 3834 §3.1.8
    for value in view.headers("precedence"):
        if value.strip().lower() in ("bulk", "list", "junk"):
            return f"the message has Precedence: {value.strip()}"
    mine = {a.lower() for a in own}
    if sender.lower() in mine:
        return "the message comes from the user"  # RFC 5230 §4.6: never answer oneself
    listed = {a.lower() for name in _RECIPIENT_FIELDS for a in view.addresses(name)}
    if not listed & mine:
        return "none of the user's addresses is in To or Cc"  # RFC 5230 §4.5
    return None


def is_own(from_address: str, own: list[str]) -> bool:
    """Whether a :from value ("Name <addr>" or "addr") is one of the user's addresses."""
    _, addr = email.utils.parseaddr(from_address)
    return addr.lower() in {a.lower() for a in own}


def memory_key(user_id: int, action: Vacation, sender: str) -> str:
    """What the store remembers for ``days`` after an answer (RFC 5230 §4.2)."""
    return f"sieve-vacation/{user_id}/{action.handle}/{sender.lower()}"


def _header(name: str, value: str) -> str:
    if value.isascii():
        return f"{name}: {value}"
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode()}"


def reply(
    view: MessageView, action: Vacation, user_address: str, hostname: str, now: datetime
) -> bytes:
    """The answer: from the user to the envelope sender (RFC 5230 §4.5), as CRLF bytes."""
    original = view.headers("subject")
    subject = action.subject
    if subject is None:
        subject = "Auto: " + (original[0] if original else "")  # RFC 5230 §4.4 / RFC 3834 §3.1.5
    sender = action.from_address or user_address
    lines = [
        _header("From", sender),
        f"To: <{view.envelope.sender}>",
        _header("Subject", subject.replace("\r", " ").replace("\n", " ")[:200]),
        f"Date: {email.utils.format_datetime(now)}",
        f"Message-ID: <{secrets.token_hex(16)}@{hostname}>",
        "Auto-Submitted: auto-replied (vacation)",  # RFC 3834 §5, RFC 5230 §5
    ]
    message_id = (view.headers("message-id") or [""])[0].strip()
    if message_id:
        lines.append(f"In-Reply-To: {message_id}")  # RFC 3834 §3.1.3
        refs = " ".join([*(view.headers("references") or [""])[0].split(), message_id])
        lines.append(f"References: {refs[-900:]}")
    lines.append("MIME-Version: 1.0")
    reason = action.reason.replace("\r\n", "\n").replace("\n", "\r\n")
    if action.mime:
        # RFC 5230 §4.8: the reason is a MIME entity, its own header fields included.
        return ("\r\n".join(lines) + "\r\n" + reason.lstrip("\r\n")).encode("utf-8")
    cte = "7bit" if reason.isascii() else "8bit"
    lines += ["Content-Type: text/plain; charset=utf-8", f"Content-Transfer-Encoding: {cte}"]
    body = reason if reason.endswith("\r\n") else reason + "\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")
