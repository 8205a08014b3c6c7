"""POP3 as a sans-IO core: RFC 1939, CAPA and response codes (RFC 2449, RFC 3206), STLS
(RFC 2595 §4) and SASL AUTH (RFC 5034). No asyncio, sockets, TLS or storage are imported here.

How the adapter drives it (net/pop3.py)
---------------------------------------
::

    conn = Pop3Connection(Pop3Config(tls_active=port_is_995, stls_offered=not port_is_995))
    write(replies.greeting())
    while True:
        data = await read()                     # b"" at EOF: close; there is no UPDATE then
        conn.receive_data(data)
        while True:
            try:
                event = conn.next_event()
            except ProtocolError as e:
                write(e.reply)                  # the exact -ERR line
                if e.fatal: close()             # error budget spent, or not POP3 at all
                continue
            if isinstance(event, NeedData): break
            if isinstance(event, Paused): ...   # after QUIT: close; after STLS: see below
            write(await session.handle(event))  # one write per reply

After an ``Stls`` event the session replies ``replies.tls_starting()``; the adapter then checks
``conn.trailing_data``: when set, the client sent bytes after STLS before the handshake, and the
adapter closes the connection without starting TLS (RFC 2595 §4, the CVE-2011-0411 class).
Otherwise it runs the handshake and calls ``conn.tls_started()``; if the session cannot offer TLS
after all, it replies ``replies.tls_unavailable()`` and calls ``conn.stls_declined()``.

How the session decides (session/pop3.py)
-----------------------------------------
Events are frozen dataclasses; ``AuthorizationCommand`` and ``TransactionCommand`` are the unions
legal in each state (the core never hands out one in the wrong state), so the session matches on
``conn.state`` and then on the union, ending each ``match`` with ``assert_never``.

* ``User`` then ``Pass``: the core guarantees PASS came right after USER and that plaintext
  authentication is allowed now (TLS active, or ``cleartext_auth``). On success the session
  takes the maildrop snapshot, calls ``conn.authenticated()`` and replies
  ``replies.maildrop_status(count, size)``; on failure ``replies.auth_failed()``, or
  ``maildrop_locked()`` / ``login_delay()`` / ``temporary_failure()`` as the case is.
* ``Auth``: the mechanism is one ``conn.sasl_mechanisms()`` lists; ``initial_response`` is
  already decoded by ``courriel.wire.sasl.decode_response`` (``None`` = none sent, ``b""`` for
  "="), so the session feeds ``SaslExchange.start_decoded(mechanism, initial_response)``. For a
  ``Challenge`` it writes ``conn.challenge(challenge.data)``; the next event is then
  ``AuthResponse``: decoded data for ``step_decoded``, or ``cancelled`` for "*", answered with
  ``replies.auth_cancelled()``. A ``SaslError`` from the exchange is answered with
  ``replies.auth_failed()``. A malformed response line raises ``ProtocolError`` from the core
  and ends the exchange; the next Auth starts a new one.
* ``Capa`` -> ``conn.capa_response()``; ``Quit`` in AUTHORIZATION -> ``replies.signing_off()``.
* TRANSACTION: message numbers are already positive integers and TOP's line count is
  non-negative; whether a number names a message is the session's call, answered with
  ``replies.no_such_message()`` or ``replies.already_deleted(n)``. Replies:
  ``stat_reply``, ``scan_line`` / ``scan_listing``, ``uidl_line`` / ``uidl_listing``,
  ``message_response(raw)`` for RETR, ``top_response(raw, header_end(raw), n)`` for TOP,
  ``deleted(n)`` for DELE, ``ok()`` for NOOP, ``maildrop_status`` for RSET.
* ``Quit`` in TRANSACTION: the core is now in UPDATE; the session removes the messages marked
  deleted and replies ``signing_off()`` or ``update_failed()`` (RFC 1939 §6). A connection that
  ends any other way never reaches UPDATE and removes nothing.

Invariants
----------
* Any bytes give events or ``ProtocolError``; any other exception from this package is a bug.
* No reply contains bytes the client sent, so no reply can be made to carry an injected line.
* Bytes received after STLS and before the handshake are never parsed as commands.
* Memory per connection is bounded by the read size plus one line limit.
"""

from courriel.wire.pop3.commands import (
    NEED_DATA,
    PAUSED,
    Auth,
    AuthorizationCommand,
    AuthResponse,
    Capa,
    Command,
    Dele,
    Event,
    List,
    NeedData,
    Noop,
    Pass,
    Paused,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    TransactionCommand,
    Uidl,
    User,
)
from courriel.wire.pop3.core import PLAINTEXT_MECHANISMS, Pop3Config, Pop3Connection, State

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "PLAINTEXT_MECHANISMS",
    "Auth",
    "AuthResponse",
    "AuthorizationCommand",
    "Capa",
    "Command",
    "Dele",
    "Event",
    "List",
    "NeedData",
    "Noop",
    "Pass",
    "Paused",
    "Pop3Config",
    "Pop3Connection",
    "Quit",
    "Retr",
    "Rset",
    "Stat",
    "State",
    "Stls",
    "Top",
    "TransactionCommand",
    "Uidl",
    "User",
]
