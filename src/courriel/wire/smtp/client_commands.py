"""What an SMTP client sends: MAIL and RCPT with their parameters, and the message body.

Theory of operation
-------------------
Each builder returns the exact octets of one command. Parameters are added only when the
server offered the extension they belong to (RFC 5321 §4.1.1.11: a parameter not offered is
refused with 555): SIZE (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), REQUIRETLS
(RFC 8689), and the DSN parameters RET, ENVID, NOTIFY and ORCPT (RFC 3461), which are simply
left out when the next hop offers no DSN, as RFC 3461 §4 allows (the relaying server then owes
the success and delay notices itself, which is the queue's business).

Addresses come from courriel's own queue, already checked when they were accepted; a CR, LF,
NUL or angle bracket in one would still let it end the command early and forge another, so
the builders refuse such an address with ``ValueError``.

The body: ``dot_stuffed`` doubles every leading "." with one ``replace`` and adds the
terminator (RFC 5321 §4.5.2); ``bdat`` sends the message as one chunk with LAST (RFC 3030 §2),
which needs no stuffing at all. The message is expected with CRLF line ends; courriel's own
server refuses bare CR and LF at submission, so one never reaches the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from courriel.wire.smtp.client_replies import Capabilities

_UNSAFE = frozenset("\r\n\x00<>")


@dataclass(frozen=True, slots=True)
class RecipientSpec:
    """One forward-path with its RFC 3461 parameters, as stored at submission."""

    address: str
    notify: tuple[str, ...] | None = None  # None: not given; (): NEVER
    orcpt: str | None = None  # "type;address", decoded


@dataclass(frozen=True, slots=True)
class ClientEnvelope:
    """One message to send in one transaction."""

    sender: str  # "" for the null reverse-path
    recipients: tuple[RecipientSpec, ...]
    message: bytes
    ret: str | None = None  # "FULL" | "HDRS"
    envid: str | None = None
    smtputf8: bool = False  # the message or an address needs SMTPUTF8
    eight_bit: bool = False  # the body holds 8-bit octets (BODY=8BITMIME)
    requiretls: bool = False  # RFC 8689


def xtext(text: str) -> str:
    """RFC 3461 §4 xtext: "+", "=" and anything outside "!".."~" as +HH, per UTF-8 octet."""
    out = []
    for octet in text.encode("utf-8"):
        if 0x21 <= octet <= 0x7E and octet not in (0x2B, 0x3D):
            out.append(chr(octet))
        else:
            out.append(f"+{octet:02X}")
    return "".join(out)


def _path(address: str) -> str:
    if _UNSAFE.intersection(address):
        raise ValueError(f"address holds a character SMTP cannot carry: {address!r}")
    return f"<{address}>"


def mail_from(envelope: ClientEnvelope, caps: Capabilities, size: int) -> bytes:
    """MAIL FROM with the parameters the server offered (RFC 5321 §4.1.1.2)."""
    params: list[str] = []
    if caps.size is not None:
        params.append(f"SIZE={size}")  # RFC 1870 §3
    if envelope.eight_bit and caps.eight_bit_mime:
        params.append("BODY=8BITMIME")  # RFC 6152 §2
    if envelope.smtputf8 and caps.smtputf8:
        params.append("SMTPUTF8")  # RFC 6531 §3.4
    if envelope.requiretls and caps.requiretls:
        params.append("REQUIRETLS")  # RFC 8689 §4.2
    if caps.dsn:
        if envelope.ret:
            params.append(f"RET={envelope.ret}")  # RFC 3461 §4.3
        if envelope.envid:
            params.append(f"ENVID={xtext(envelope.envid)}")  # RFC 3461 §4.4
    return _line("MAIL FROM:" + _path(envelope.sender), params)


def rcpt_to(recipient: RecipientSpec, caps: Capabilities) -> bytes:
    """RCPT TO, with NOTIFY and ORCPT when the server offered DSN (RFC 3461 §4.1, §4.2)."""
    params: list[str] = []
    if caps.dsn:
        if recipient.notify is not None:
            params.append("NOTIFY=" + (",".join(recipient.notify) or "NEVER"))
        if recipient.orcpt:
            kind, _, addr = recipient.orcpt.partition(";")
            if kind.lower() == "utf-8" and not caps.smtputf8:
                kind = "rfc822"  # RFC 6533 §3: utf-8-addr only towards an SMTPUTF8 server
            params.append(f"ORCPT={kind};{xtext(addr)}")
    return _line("RCPT TO:" + _path(recipient.address), params)


def _line(command: str, params: Sequence[str]) -> bytes:
    return (" ".join([command, *params]) + "\r\n").encode("utf-8")


def dot_stuffed(message: bytes) -> bytes:
    """The message as DATA content with its terminator (RFC 5321 §4.5.2), in bulk."""
    if message and not message.endswith(b"\r\n"):
        message += b"\r\n"  # the terminator needs a line start
    body = message.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    return body + b".\r\n"


def bdat(message: bytes) -> bytes:
    """The whole message as one last chunk (RFC 3030 §2): no stuffing, no terminator."""
    return b"BDAT %d LAST\r\n" % len(message) + message


def needs_eight_bit(message: bytes) -> bool:
    """Whether any octet has the high bit set (one pass in C)."""
    return not message.isascii()
