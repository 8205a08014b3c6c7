"""The SMTP server protocol core, sans-IO: submission (587, 465) and inbound MX (25).

How a session drives it
-----------------------
::

    conn = SmtpConnection(SmtpConfig(hostname="mx.example.org", mode=Mode.MX,
                                     tls_available=True, max_message_bytes=...))
    write(conn.greeting())                        # 220; or greeting(Reply(554, ...)) to refuse
    while True:
        try:
            event = conn.next_event()
        except ProtocolError as e:                # bad syntax, bad order, limit: reply is ready
            write(e.reply)
            if e.fatal:
                break                             # close the connection
            continue
        match event:
            case NeedData():
                data = await read()
                if not data:
                    conn.connection_lost(); break
                conn.receive_data(data)
            case Closed():
                break
            case Ehlo():
                write(conn.send(conn.ehlo_reply()))          # the core lists the extensions
            case MailFrom(path, raw, params):
                write(conn.send(policy_reply))               # e.g. replies.SENDER_OK
            case Data():
                write(conn.send(replies.START_DATA))         # 354: the message follows
            case MessageData(message=message) | BdatLast(message=message):
                await deliver(message)                       # durable first, then 250
                write(conn.send(replies.QUEUED))
            case BdatChunk(size):
                write(conn.send(Reply(250, "2.0.0", f"{size} octets received")))
            case StartTls():
                write(conn.send(replies.READY_FOR_TLS))
                conn.discard_trailing_data()                 # plaintext after STARTTLS: gone
                await start_tls(); conn.tls_started()
            case Auth(mechanism, initial):                   # sasl.start_decoded(...)
                write(conn.send(challenge(data)))            # 334, or AUTH_OK / AUTH_FAILED
            case AuthResponse(data):                         # sasl.step_decoded(data)
                write(conn.send(replies.AUTH_OK))            # or another challenge
            ...
            case _:
                assert_never(event)
        if conn.state is State.CLOSED:
            break                                     # after 221, 421, or the error budget

Rules of the API:

* Every event except ``NeedData`` and ``Closed`` must be answered with exactly one ``send``
  before ``next_event`` is called again (``UsageError`` otherwise). The reply code decides the
  next state: 2xx to MAIL opens the transaction, 2xx to RCPT counts a recipient, 354 to DATA
  starts reading the message, 334 to AUTH continues the SASL exchange, 235 marks the session
  authenticated, 220 to STARTTLS stops reading until ``tls_started``, 221 to QUIT closes, and a
  421 closes from any state (it may also be sent with no event waiting, e.g. at shutdown).
* ``send`` returns the bytes to write. If the reply was the one that spent the error budget
  they end with 421 4.7.0, and ``state`` is ``State.CLOSED``: write, then close.
* ``ProtocolError.reply`` is always complete bytes; ``fatal`` means close after writing it.
* Feed input with ``receive_data`` and call ``next_event`` until it returns ``NeedData`` before
  reading more from the socket; then the core holds at most its limits (one command line, or
  the message so far within ``max_message_bytes``).
* Addresses come parsed (``paths.Path``: route stripped, local part unquoted, domain as sent)
  and raw. Whether a parsed but odd address (``%``, quoted "@", a source route) is acceptable is
  the session's decision. ``MessageData.message`` is dot-unstuffed with CRLF line ends.
* ``Auth`` and ``AuthResponse`` carry base64-decoded bytes; the SASL mechanism itself
  (``courriel.wire.sasl``) is the session's to run. "*" (cancel) and bad base64 are answered by
  the core (501) and end the exchange.

Package invariants: no I/O, no asyncio, socket, ssl or database imports; every malformed input
becomes one ``ProtocolError``; a message is never handed out unless its terminator (or BDAT
LAST) was read, so a client that disconnects mid-message delivers nothing.
"""

from __future__ import annotations

from courriel.wire.smtp.core import SmtpConnection, UsageError
from courriel.wire.smtp.events import (
    Auth,
    AuthResponse,
    BdatChunk,
    BdatLast,
    Closed,
    Data,
    Ehlo,
    Event,
    Helo,
    Help,
    MailFrom,
    MessageData,
    NeedData,
    Noop,
    Quit,
    RcptTo,
    Rset,
    StartTls,
    Vrfy,
)
from courriel.wire.smtp.params import Body, MailParams, Notify, RcptParams, Ret
from courriel.wire.smtp.paths import Path
from courriel.wire.smtp.replies import Reply, challenge
from courriel.wire.smtp.settings import Mode, SmtpConfig
from courriel.wire.smtp.states import State

__all__ = [
    "Auth",
    "AuthResponse",
    "BdatChunk",
    "BdatLast",
    "Body",
    "Closed",
    "Data",
    "Ehlo",
    "Event",
    "Helo",
    "Help",
    "MailFrom",
    "MailParams",
    "MessageData",
    "Mode",
    "NeedData",
    "Noop",
    "Notify",
    "Path",
    "Quit",
    "RcptParams",
    "RcptTo",
    "Reply",
    "Ret",
    "Rset",
    "SmtpConfig",
    "SmtpConnection",
    "StartTls",
    "State",
    "UsageError",
    "Vrfy",
    "challenge",
]
