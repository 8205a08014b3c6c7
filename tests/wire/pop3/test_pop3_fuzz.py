"""The fuzz invariant of the POP3 core: any bytes give events or ProtocolError, nothing else.

A small driver plays the session: it logs in when asked to, answers AUTH with a challenge, and
completes or declines STLS, so the bytes reach every state. Along the way it checks that each
event is one the state before it allows and that every error reply is one well-formed line.
"""

from __future__ import annotations

from dataclasses import replace
from types import UnionType

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.wire.errors import ProtocolError
from courriel.wire.pop3 import (
    Auth,
    AuthorizationCommand,
    AuthResponse,
    NeedData,
    Pass,
    Paused,
    Pop3Config,
    Pop3Connection,
    State,
    Stls,
    TransactionCommand,
)

COMMANDS = [
    b"USER bob\r\n",
    b"PASS secret\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n",
    b"AUTH LOGIN\r\n",
    b"Ym9i\r\n",
    b"*\r\n",
    b"STLS\r\n",
    b"CAPA\r\n",
    b"STAT\r\n",
    b"LIST\r\n",
    b"LIST 1\r\n",
    b"UIDL 2\r\n",
    b"RETR 1\r\n",
    b"TOP 1 0\r\n",
    b"DELE 3\r\n",
    b"NOOP\r\n",
    b"RSET\r\n",
    b"QUIT\r\n",
    b"\r\n",
    b"\n",
    b"GET / HTTP/1.0\r\n",
]

chunks = st.lists(
    st.one_of(
        # several commands in one read, as a pipelining client sends them
        st.lists(st.sampled_from(COMMANDS), min_size=1, max_size=6).map(b"".join),
        st.binary(max_size=300),
    ),
    max_size=25,
)
configs = st.builds(
    Pop3Config,
    tls_active=st.booleans(),
    stls_offered=st.booleans(),
    cleartext_auth=st.booleans(),
    user_command=st.booleans(),
    max_line=st.sampled_from([6, 32, 255]),
    max_sasl_line=st.sampled_from([6, 64, 16384]),
    max_errors=st.integers(min_value=1, max_value=30),
)

_LEGAL: dict[State, type | UnionType] = {
    State.AUTHORIZATION: AuthorizationCommand,
    State.TRANSACTION: TransactionCommand,
    State.SASL: AuthResponse,
}


def _play(conn: Pop3Connection, event: object, accept: bool) -> None:
    """What a session might do after ``event``; ``accept`` chooses between the outcomes."""
    if isinstance(event, Pass | AuthResponse) or (
        isinstance(event, Auth) and event.initial_response is not None
    ):
        if accept and conn.state is State.AUTHORIZATION:
            conn.authenticated()
    elif isinstance(event, Auth):
        if accept:
            conn.challenge(b"")
    elif isinstance(event, Stls) and accept:
        conn.tls_started()
    elif isinstance(event, Stls):
        conn.stls_declined()


def _drain(conn: Pop3Connection, accept: bool) -> None:
    while True:
        before = conn.state
        try:
            event = conn.next_event()
        except ProtocolError as e:
            assert e.reply.startswith(b"-ERR ")
            assert e.reply.endswith(b"\r\n")
            assert e.reply.count(b"\n") == 1
            if e.fatal:
                assert conn.state is State.CLOSED
            continue
        if isinstance(event, NeedData | Paused):
            return
        assert before in _LEGAL, f"{event!r} out of {before}"
        assert isinstance(event, _LEGAL[before]), f"{event!r} in {before}"
        _play(conn, event, accept)


@settings(max_examples=400, deadline=None)
@given(configs, st.booleans(), chunks, st.lists(st.booleans(), min_size=1, max_size=8))
def test_any_bytes_give_events_or_protocol_errors(
    config: Pop3Config, login_first: bool, data: list[bytes], choices: list[bool]
) -> None:
    if login_first:  # half the runs start in TRANSACTION, where most commands live
        config = replace(config, tls_active=True, user_command=True, max_line=255)
    conn = Pop3Connection(config)
    if login_first:
        conn.receive_data(b"USER bob\r\nPASS secret\r\n")
        _drain(conn, accept=True)
        assert conn.state is State.TRANSACTION
    for i, chunk in enumerate(data):
        conn.receive_data(chunk)
        _drain(conn, choices[i % len(choices)])
    assert conn.errors <= config.max_errors
