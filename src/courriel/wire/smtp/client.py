"""The sans-IO SMTP client core: one connection's phases and one mail transaction at a time.

Theory of operation
-------------------
The adapter (``courriel.net.smtp_client``) owns the socket. It writes what the core returns,
feeds what it reads with ``receive_data``, and passes each reply ``next_reply`` yields to
``receive``; ``receive`` returns the octets to write next (often none) and moves the core to
its next phase by the table ``AFTER``, a pure function of (phase, positive reply)::

    GREETING --220--> FRESH --EHLO 250--> READY --STARTTLS 220--> TLS --tls_started--> FRESH
                            --EHLO 5xx--> (HELO) FRESH --HELO 250--> READY
    READY --AUTH 235--> READY        READY --MAIL...--> TRANSACTION --last reply--> READY
    READY --RSET 250--> READY        any --QUIT / 421 / error--> CLOSED

The core never decides what to try next: whether to fall back to HELO, to start TLS, or to
give up is the adapter's policy. It does decide what RFCs leave no room for.

A transaction (``Transaction``) sends MAIL, every RCPT and DATA in one write when the server
offers PIPELINING (RFC 2920 §3.1: DATA ends the group), else one command per reply. The body
goes after 354 dot-stuffed, or, when CHUNKING is offered, as one ``BDAT n LAST`` once at least
one RCPT was accepted, so a message refused for every recipient is never sent. Each
recipient's result is the reply that decided it: its RCPT refusal, or MAIL's refusal, or the
reply to DATA or to the end of the data. When a pipelined DATA is answered 354 although every
RCPT was refused, the core sends an empty message (RFC 2920 §3.1) and nothing is delivered.

Before MAIL the transaction refuses what the server cannot take, as permanent failures with a
sentence a person can read: a message needing SMTPUTF8 to a server without it (RFC 6531
§3.4), a message larger than the server's SIZE (RFC 1870 §6), an 8-bit message to a server
without 8BITMIME that could not be converted to 7 bits (RFC 6152 §3), REQUIRETLS to a server
that does not offer it (RFC 8689 §4.2.1).

Bytes the server sends after its 220 to STARTTLS and before the handshake would be read as if
they came under TLS; ``tls_started`` refuses them (the client side of CVE-2011-0411).
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Callable
from dataclasses import dataclass

from courriel.wire.smtp.client_commands import (
    ClientEnvelope,
    bdat,
    dot_stuffed,
    mail_from,
    needs_eight_bit,
    rcpt_to,
)
from courriel.wire.smtp.client_replies import BadReply, Capabilities, ReplyLimits, ReplyReader
from courriel.wire.smtp.core import UsageError  # the adapter called out of turn: its bug
from courriel.wire.smtp.replies import Reply


class Phase(enum.Enum):
    GREETING = "greeting"  # connected, waiting for 220
    FRESH = "fresh"  # greeted (or TLS just started): EHLO or HELO next
    EHLO = "ehlo"
    HELO = "helo"
    STARTTLS = "starttls"
    TLS = "tls"  # 220 to STARTTLS: the adapter runs the handshake, then tls_started()
    AUTH = "auth"
    READY = "ready"  # between transactions
    TRANSACTION = "transaction"
    RSET = "rset"
    QUIT = "quit"
    CLOSED = "closed"


# (phase waiting for a reply, reply positive) -> next phase. A 421 closes from anywhere.
AFTER: dict[tuple[Phase, bool], Phase] = {
    (Phase.GREETING, True): Phase.FRESH,
    (Phase.GREETING, False): Phase.CLOSED,  # RFC 5321 §3.1: 554 means only QUIT follows
    (Phase.EHLO, True): Phase.READY,
    (Phase.EHLO, False): Phase.FRESH,  # the adapter may try HELO (RFC 5321 §3.2)
    (Phase.HELO, True): Phase.READY,
    (Phase.HELO, False): Phase.CLOSED,
    (Phase.STARTTLS, True): Phase.TLS,
    (Phase.STARTTLS, False): Phase.READY,  # still plaintext, may go on if policy allows
    (Phase.AUTH, True): Phase.READY,
    (Phase.AUTH, False): Phase.READY,
    (Phase.RSET, True): Phase.READY,
    (Phase.RSET, False): Phase.CLOSED,  # a server that cannot reset cannot be reused
    (Phase.QUIT, True): Phase.CLOSED,
    (Phase.QUIT, False): Phase.CLOSED,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message is not even offered to this server."""

    enhanced: str
    text: str


class Transaction:
    """One MAIL transaction; results per recipient once ``done``."""

    def __init__(self, caps: Capabilities, envelope: ClientEnvelope) -> None:
        self.caps = caps
        self.envelope = envelope
        self._pending: list[tuple[str, int]] = []  # replies awaited: (what, recipient index)
        self._accepted: list[int] = []
        self.results: list[Reply | None] = [None] * len(envelope.recipients)
        self.done = False

    @property
    def awaiting(self) -> str:
        """What the next reply answers: "MAIL", "RCPT", "DATA", "END" (of data), "RSET"..."""
        return self._pending[0][0] if self._pending else ""

    def start(self) -> bytes:
        """The first write: MAIL, or MAIL + RCPTs (+ DATA) when pipelining."""
        env, caps = self.envelope, self.caps
        out = [mail_from(env, caps, len(env.message))]
        self._pending.append(("MAIL", -1))
        if caps.pipelining:  # RFC 2920 §3.1
            for i, rcpt in enumerate(env.recipients):
                out.append(rcpt_to(rcpt, caps))
                self._pending.append(("RCPT", i))
            if not caps.chunking:
                out.append(b"DATA\r\n")  # RFC 2920 §3.1: DATA is the last of the group
                self._pending.append(("DATA", -1))
        return b"".join(out)

    def receive(self, reply: Reply) -> bytes:
        """Takes the reply to the oldest command in flight; returns what to write next."""
        if not self._pending:
            raise UsageError("no command is waiting for a reply")
        what, index = self._pending.pop(0)
        if what == "MAIL":
            return self._on_mail(reply)
        if what == "RCPT":
            return self._on_rcpt(reply, index)
        if what == "DATA":
            return self._on_data(reply)
        if what in ("RSET", "IGNORE"):
            self.done = not self._pending
            return b""
        self._settle(reply)  # the end of the data, or BDAT LAST
        return b""

    def _on_mail(self, reply: Reply) -> bytes:
        if reply.positive:
            if self.caps.pipelining:
                return b""
            self._pending.append(("RCPT", 0))
            return rcpt_to(self.envelope.recipients[0], self.caps)
        self.results = [reply] * len(self.results)  # nothing can be accepted without MAIL
        self.done = not self._pending
        # Pipelined RCPTs are refused in turn; a pipelined DATA still needs its answer read
        # (and an empty message sent should a broken server answer it 354).
        self._pending = [(w if w == "DATA" else "IGNORE", i) for w, i in self._pending]
        return b""

    def _on_rcpt(self, reply: Reply, index: int) -> bytes:
        if reply.positive:
            self._accepted.append(index)
        else:
            self.results[index] = reply
        last = index == len(self.envelope.recipients) - 1
        if not self.caps.pipelining and not last:
            self._pending.append(("RCPT", index + 1))
            return rcpt_to(self.envelope.recipients[index + 1], self.caps)
        if not last or (self.caps.pipelining and not self.caps.chunking):
            return b""  # the pipelined DATA's reply decides
        if not self._accepted:
            self._pending.append(("RSET", -1))  # leave the connection clean for reuse
            return b"RSET\r\n"
        if self.caps.chunking:
            self._pending.append(("END", -1))
            return bdat(self.envelope.message)  # RFC 3030 §2
        self._pending.append(("DATA", -1))
        return b"DATA\r\n"

    def _on_data(self, reply: Reply) -> bytes:
        if reply.code != 354:
            self._settle(reply)
            return b""
        self._pending.append(("END", -1))
        if not self._accepted:
            return b".\r\n"  # RFC 2920 §3.1: an empty message, answered and ignored
        return dot_stuffed(self.envelope.message)

    def _settle(self, reply: Reply) -> None:
        """``reply`` decides every recipient whose RCPT was accepted."""
        for i in self._accepted:
            self.results[i] = reply
        self.done = not self._pending


Downgrade = Callable[[bytes], bytes | None]


def refusal(caps: Capabilities, envelope: ClientEnvelope, server: str) -> Refusal | None:
    """Why ``envelope`` cannot be offered to this server at all, or ``None``."""
    if envelope.smtputf8 and not caps.smtputf8:
        return Refusal(  # RFC 6531 §3.4
            "5.6.7",
            f"the message needs SMTPUTF8 (an address is not ASCII) and {server} does not offer it",
        )
    if envelope.requiretls and not caps.requiretls:
        return Refusal(  # RFC 8689 §4.2.1
            "5.7.30", f"the sender asked for REQUIRETLS and {server} does not offer it"
        )
    size = len(envelope.message)
    if caps.size and size > caps.size:
        return Refusal(  # RFC 1870 §6
            "5.3.4", f"the message is {size} octets and {server} accepts at most {caps.size}"
        )
    return None


def seven_bit(envelope: ClientEnvelope, caps: Capabilities, convert: Downgrade) -> bytes | None:
    """The message to send to a server without 8BITMIME, or ``None`` if it cannot be sent.

    RFC 6152 §3: such a message must be converted to 7 bits or returned. ``convert`` is the
    MIME downgrade (``courriel.mail.downgrade``); ``None`` from it means it could not.
    """
    message = envelope.message
    if caps.eight_bit_mime or not needs_eight_bit(message):
        return message
    return convert(message)


class ClientConnection:
    """One SMTP client connection, sans-IO. See the module docstring."""

    def __init__(self, limits: ReplyLimits | None = None) -> None:
        self._reader = ReplyReader(limits)
        self.phase = Phase.GREETING
        self.caps = Capabilities()
        self.tls = False
        self.transaction: Transaction | None = None

    def receive_data(self, data: bytes) -> None:
        self._reader.feed(data)

    @property
    def buffered(self) -> int:
        """Octets received and not yet returned as a reply (bounded by the reply limits)."""
        return self._reader.buffered

    def next_reply(self) -> Reply | None:
        """The next complete reply, or ``None`` when more input is needed; raises ``BadReply``."""
        reply = self._reader.next_reply()
        if reply is not None and self.phase in (Phase.READY, Phase.FRESH, Phase.TLS):
            if reply.code == 421:  # RFC 5321 §3.8: a server may say it is going away
                self.phase = Phase.CLOSED
                return reply
            raise BadReply(f"the server sent a reply nobody asked for: {reply.code} {reply.text}")
        return reply

    def receive(self, reply: Reply) -> bytes:
        """Moves on with ``reply``; returns what to write next."""
        if reply.code == 421 and self.phase is not Phase.QUIT:
            self.phase = Phase.CLOSED  # RFC 5321 §3.8
            self.transaction = None
            return b""
        if self.phase is Phase.TRANSACTION:
            assert self.transaction is not None
            out = self.transaction.receive(reply)
            if self.transaction.done:
                self.phase = Phase.READY
            return out
        nxt = AFTER.get((self.phase, reply.positive))
        if nxt is None:
            raise UsageError(f"no reply is expected in phase {self.phase.value}")
        if self.phase is Phase.EHLO and reply.positive:
            self.caps = Capabilities.from_ehlo(reply)
        self.phase = nxt
        return b""

    def _ask(self, allowed: tuple[Phase, ...], phase: Phase, line: bytes) -> bytes:
        if self.phase not in allowed:
            raise UsageError(f"cannot send {line[:4]!r} in phase {self.phase.value}")
        self.phase = phase
        return line

    def ehlo(self, name: str) -> bytes:
        return self._ask((Phase.FRESH,), Phase.EHLO, f"EHLO {name}\r\n".encode("ascii"))

    def helo(self, name: str) -> bytes:
        self.caps = Capabilities()
        return self._ask((Phase.FRESH,), Phase.HELO, f"HELO {name}\r\n".encode("ascii"))

    def starttls(self) -> bytes:
        return self._ask((Phase.READY,), Phase.STARTTLS, b"STARTTLS\r\n")

    def tls_started(self) -> None:
        """The handshake succeeded: the server must be greeted again (RFC 3207 §4.2)."""
        if self.phase is not Phase.TLS:
            raise UsageError("STARTTLS was not accepted")
        if self._reader.buffered:
            raise BadReply("the server sent data after 220 to STARTTLS, before TLS started")
        self.phase, self.tls, self.caps = Phase.FRESH, True, Capabilities()

    def auth_plain(self, user: str, password: str) -> bytes:
        """AUTH PLAIN with the initial response (RFC 4954 §4, RFC 4616)."""
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
        return self._ask((Phase.READY,), Phase.AUTH, f"AUTH PLAIN {token}\r\n".encode("ascii"))

    def rset(self) -> bytes:
        return self._ask((Phase.READY,), Phase.RSET, b"RSET\r\n")

    def quit(self) -> bytes:
        allowed = tuple(p for p in Phase if p is not Phase.CLOSED)
        self.transaction = None
        return self._ask(allowed, Phase.QUIT, b"QUIT\r\n")

    def begin(self, envelope: ClientEnvelope) -> bytes:
        """Starts a transaction; ``refusal`` and ``seven_bit`` were checked by the caller."""
        if self.phase is not Phase.READY:
            raise UsageError(f"cannot start a transaction in phase {self.phase.value}")
        if not envelope.recipients:
            raise UsageError("a transaction needs at least one recipient")
        self.transaction = Transaction(self.caps, envelope)
        self.phase = Phase.TRANSACTION
        return self.transaction.start()
