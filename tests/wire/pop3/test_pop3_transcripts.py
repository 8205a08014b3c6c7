"""Transcripts of the POP3 core: client bytes in, events and exact -ERR bytes out.

Script lines:
  ``C: text``   the client sends ``text`` and CRLF
  ``R: b"..."`` the client sends these exact bytes (a Python bytes literal)
  ``E: Event(args)``  the next event equals this one (arguments are literals)
  ``S: -ERR ...``     the next event raises ProtocolError with exactly this line (non-fatal)
  ``X: -ERR ...``     the same, and the error is fatal
  ``= name [arg]``    the session's side: authenticated, challenge, tls_started, stls_declined;
                      ``= state NAME``, ``= need-data`` and ``= paused`` assert the core's state
  ``# ...``           a comment, usually the RFC section the exchange shows
"""

from __future__ import annotations

import ast

import pytest

from courriel.wire import pop3
from courriel.wire.errors import ProtocolError
from courriel.wire.pop3 import Pop3Config, Pop3Connection, State

TLS = Pop3Config(tls_active=True, stls_offered=False)  # port 995
CLEAR = Pop3Config()  # port 110 before STLS


def _expected_event(text: str) -> object:
    node = ast.parse(text, mode="eval").body
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), text
    cls = getattr(pop3, node.func.id)
    args = [ast.literal_eval(a) for a in node.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    return cls(*args, **kwargs)


def _next(conn: Pop3Connection) -> object:
    try:
        return conn.next_event()
    except ProtocolError as e:
        return e


def _session_step(conn: Pop3Connection, words: list[str], where: str) -> None:
    match words:
        case ["authenticated"]:
            conn.authenticated()
        case ["challenge", *text]:
            assert conn.challenge(" ".join(text).encode()).startswith(b"+ "), where
        case ["tls_started"]:
            conn.tls_started()
        case ["stls_declined"]:
            conn.stls_declined()
        case ["state", name]:
            assert conn.state is State[name], f"{where}: state is {conn.state.name}"
        case ["need-data"]:
            assert isinstance(_next(conn), pop3.NeedData), where
        case ["paused"]:
            assert isinstance(_next(conn), pop3.Paused), where
        case _:
            raise AssertionError(f"{where}: unknown directive {words}")


def run(config: Pop3Config, script: str) -> Pop3Connection:
    conn = Pop3Connection(config)
    for number, raw_line in enumerate(script.strip().splitlines(), 1):
        line = raw_line.strip()
        where = f"script line {number}: {line}"
        if not line or line.startswith("#"):
            continue
        tag, _, rest = line.partition(" ")
        if tag == "C:":
            conn.receive_data(rest.encode() + b"\r\n")
        elif tag == "R:":
            conn.receive_data(ast.literal_eval(rest))
        elif tag == "E:":
            got = _next(conn)
            assert got == _expected_event(rest), f"{where}: got {got!r}"
        elif tag in ("S:", "X:"):
            got = _next(conn)
            assert isinstance(got, ProtocolError), f"{where}: got {got!r}"
            assert got.reply == rest.encode() + b"\r\n", f"{where}: got {got.reply!r}"
            assert got.fatal is (tag == "X:"), where
        elif tag == "=":
            _session_step(conn, rest.split(), where)
        else:
            raise AssertionError(f"{where}: unknown tag")
    return conn


TRANSCRIPTS: dict[str, tuple[Pop3Config, str]] = {
    "login-user-pass-then-every-transaction-command": (
        TLS,
        """
        # RFC 1939 §4-§6 on an implicit-TLS connection
        C: CAPA
        E: Capa()
        C: USER bob@example.org
        E: User('bob@example.org')
        # RFC 1939 §7: the password is the rest of the line, spaces included
        C: PASS correct horse battery
        E: Pass('correct horse battery')
        = need-data
        = authenticated
        = state TRANSACTION
        C: STAT
        E: Stat()
        C: LIST
        E: List(None)
        C: LIST 2
        E: List(2)
        C: UIDL
        E: Uidl(None)
        C: UIDL 3
        E: Uidl(3)
        C: RETR 1
        E: Retr(1)
        C: TOP 1 0
        E: Top(1, 0)
        C: TOP 2 10
        E: Top(2, 10)
        C: DELE 1
        E: Dele(1)
        C: NOOP
        E: Noop()
        C: RSET
        E: Rset()
        C: CAPA
        E: Capa()
        # RFC 1939 §6: QUIT from TRANSACTION enters UPDATE; nothing more is read
        C: QUIT
        E: Quit()
        = state UPDATE
        C: STAT
        = paused
        """,
    ),
    "commands-are-case-insensitive": (
        TLS,
        """
        # RFC 1939 §3: keywords are case-insensitive; arguments keep their case
        C: user Bob
        E: User('Bob')
        C: pAsS SeCrEt
        E: Pass('SeCrEt')
        = authenticated
        C: stat
        E: Stat()
        C: List 1
        E: List(1)
        C: top 1 5
        E: Top(1, 5)
        C: uIdL
        E: Uidl(None)
        C: quit
        E: Quit()
        """,
    ),
    "transaction-commands-before-login": (
        TLS,
        """
        C: STAT
        S: -ERR STAT is not valid before authentication
        C: LIST
        S: -ERR LIST is not valid before authentication
        C: RETR 1
        S: -ERR RETR is not valid before authentication
        C: DELE 1
        S: -ERR DELE is not valid before authentication
        C: TOP 1 1
        S: -ERR TOP is not valid before authentication
        C: UIDL
        S: -ERR UIDL is not valid before authentication
        C: NOOP
        S: -ERR NOOP is not valid before authentication
        C: RSET
        S: -ERR RSET is not valid before authentication
        = state AUTHORIZATION
        C: QUIT
        E: Quit()
        = state CLOSED
        = paused
        """,
    ),
    "authorization-commands-after-login": (
        Pop3Config(tls_active=True),
        """
        C: AUTH PLAIN AGJvYgBzZWNyZXQ=
        E: Auth('PLAIN', b'\\x00bob\\x00secret')
        = authenticated
        C: USER bob
        S: -ERR USER is not valid after authentication
        C: PASS secret
        S: -ERR PASS is not valid after authentication
        C: AUTH PLAIN
        S: -ERR AUTH is not valid after authentication
        # RFC 2595 §4: STLS only in AUTHORIZATION
        C: STLS
        S: -ERR STLS is not valid after authentication
        C: NOOP
        E: Noop()
        """,
    ),
    "unknown-commands-and-the-session-goes-on": (
        TLS,
        """
        C: XTND XMIT
        S: -ERR unknown command
        # APOP is not offered: it needs the password stored in the clear
        C: APOP bob c4c9334bac560ecc979e58001b3e22fb
        S: -ERR unknown command
        C:
        S: -ERR unknown command
        C: CAPA
        E: Capa()
        """,
    ),
    "plaintext-refused-before-stls-on-110": (
        CLEAR,
        """
        # RFC 2595 §2.1: no password in the clear
        C: USER bob
        S: -ERR [AUTH] plaintext authentication is not allowed without TLS; use STLS first
        C: PASS secret
        S: -ERR [AUTH] plaintext authentication is not allowed without TLS; use STLS first
        C: AUTH PLAIN AGJvYgBzZWNyZXQ=
        S: -ERR [AUTH] plaintext authentication is not allowed without TLS; use STLS first
        C: AUTH LOGIN
        S: -ERR [AUTH] plaintext authentication is not allowed without TLS; use STLS first
        C: STLS
        E: Stls()
        = paused
        = tls_started
        C: USER bob
        E: User('bob')
        C: PASS secret
        E: Pass('secret')
        """,
    ),
    "stls-where-it-is-not-offered": (
        TLS,
        """
        C: STLS
        S: -ERR TLS is already active
        C: CAPA
        E: Capa()
        """,
    ),
    "stls-twice": (
        CLEAR,
        """
        C: STLS
        E: Stls()
        = tls_started
        # RFC 2595 §4: once TLS is active there is nothing to start
        C: STLS
        S: -ERR TLS is already active
        """,
    ),
    "stls-declined-by-the-session": (
        CLEAR,
        """
        C: STLS
        E: Stls()
        = stls_declined
        = state AUTHORIZATION
        C: CAPA
        E: Capa()
        C: USER bob
        S: -ERR [AUTH] plaintext authentication is not allowed without TLS; use STLS first
        """,
    ),
    "stls-pipelined-commands-are-never-read": (
        CLEAR,
        """
        # RFC 2595 §4, CVE-2011-0411: commands sent with STLS, before the handshake
        R: b"STLS\\r\\nUSER mallory\\r\\nPASS x\\r\\n"
        E: Stls()
        = paused
        = tls_started
        = need-data
        C: CAPA
        E: Capa()
        """,
    ),
    "sasl-plain-with-initial-response": (
        TLS,
        """
        # RFC 5034 §4, RFC 4616
        C: AUTH PLAIN AGJvYgBzZWNyZXQ=
        E: Auth('PLAIN', b'\\x00bob\\x00secret')
        = authenticated
        = state TRANSACTION
        """,
    ),
    "sasl-empty-initial-response": (
        TLS,
        """
        # RFC 5034 §4: "=" is an empty initial response
        C: AUTH PLAIN =
        E: Auth('PLAIN', b'')
        """,
    ),
    "sasl-plain-with-a-challenge": (
        TLS,
        """
        C: auth plain
        E: Auth('PLAIN', None)
        = challenge
        = state SASL
        # the response is a line of its own, however it looks, and may pass 255 octets
        C: AGJvYgBzZWNyZXQ=
        E: AuthResponse(b'\\x00bob\\x00secret')
        = state AUTHORIZATION
        = authenticated
        """,
    ),
    "sasl-login-two-challenges": (
        TLS,
        """
        C: AUTH LOGIN
        E: Auth('LOGIN')
        = challenge Username:
        C: Ym9i
        E: AuthResponse(b'bob')
        = challenge Password:
        C: c2VjcmV0
        E: AuthResponse(b'secret')
        = authenticated
        """,
    ),
    "sasl-cancelled": (
        TLS,
        """
        C: AUTH PLAIN
        E: Auth('PLAIN')
        = challenge
        # RFC 5034 §4: "*" cancels; the session answers -ERR
        C: *
        E: AuthResponse(b'', cancelled=True)
        = state AUTHORIZATION
        C: QUIT
        E: Quit()
        """,
    ),
    "sasl-response-that-is-not-base64": (
        TLS,
        """
        C: AUTH PLAIN
        E: Auth('PLAIN')
        = challenge
        # RFC 5034 §4: a response that does not decode fails the AUTH command
        C: USER bob
        S: -ERR the authentication response is not valid base64
        = state AUTHORIZATION
        C: USER bob
        E: User('bob')
        """,
    ),
    "sasl-response-base64-must-be-canonical-and-bounded": (
        TLS,
        """
        C: AUTH PLAIN
        E: Auth('PLAIN')
        = challenge
        # RFC 4648 §3.5: "AB==" has pad bits set, so two encodings would mean one byte
        C: AB==
        S: -ERR the authentication response is not valid base64
        C: AUTH PLAIN
        E: Auth('PLAIN')
        = challenge
        C: QUFB QUFB
        S: -ERR the authentication response is not valid base64
        C: AUTH PLAIN *
        S: -ERR the initial response is not valid base64
        """,
    ),
    "sasl-bad-mechanisms-and-arguments": (
        TLS,
        """
        C: AUTH CRAM-MD5
        S: -ERR unsupported authentication mechanism
        C: AUTH PL@IN
        S: -ERR that is not a SASL mechanism name
        C: AUTH ABCDEFGHIJKLMNOPQRSTU
        S: -ERR that is not a SASL mechanism name
        C: AUTH PLAIN !!!!
        S: -ERR the initial response is not valid base64
        C: AUTH PLAIN AAAA AAAA
        S: -ERR AUTH takes a mechanism name and an optional initial response
        C: AUTH
        S: -ERR AUTH takes a mechanism name and an optional initial response
        """,
    ),
    "pass-must-follow-user": (
        TLS,
        """
        # RFC 1939 §7: PASS only immediately after USER
        C: PASS secret
        S: -ERR PASS must come right after USER
        C: USER bob
        E: User('bob')
        C: CAPA
        E: Capa()
        C: PASS secret
        S: -ERR PASS must come right after USER
        C: USER bob
        E: User('bob')
        C: FOO
        S: -ERR unknown command
        C: PASS secret
        S: -ERR PASS must come right after USER
        C: USER bob
        E: User('bob')
        C: USER alice
        E: User('alice')
        C: PASS secret
        E: Pass('secret')
        """,
    ),
    "pipelining-gives-events-in-order": (
        TLS,
        """
        # RFC 2449 §6.6: several commands in one packet; each is read in the state the one
        # before it left
        R: b"USER bob\\r\\nPASS pw\\r\\nSTAT\\r\\nRETR 0\\r\\nRETR 1\\r\\nQUIT\\r\\nNOOP\\r\\n"
        E: User('bob')
        E: Pass('pw')
        = authenticated
        E: Stat()
        S: -ERR a message number is a positive decimal integer
        E: Retr(1)
        E: Quit()
        = paused
        """,
    ),
    "bare-lf-and-split-reads": (
        TLS,
        """
        R: b"US"
        = need-data
        R: b"ER bob\\n"
        E: User('bob')
        R: b"PASS secret\\r"
        = need-data
        R: b"\\n"
        E: Pass('secret')
        """,
    ),
    "control-characters-and-bad-utf8": (
        TLS,
        """
        R: b"NOOP\\x00\\r\\n"
        S: -ERR control characters are not allowed in a command
        R: b"USER a\\rb\\r\\n"
        S: -ERR control characters are not allowed in a command
        R: b"USER \\xff\\xfe\\r\\n"
        S: -ERR the user name is not valid UTF-8
        R: b"USER j\\xc3\\xb6rg\\r\\n"
        E: User('j\\u00f6rg')
        """,
    ),
    "http-request-closes-at-once": (
        CLEAR,
        """
        # cross-protocol requests (ALPACA): the rest must never be read as POP3
        R: b"POST / HTTP/1.1\\r\\nHost: mail\\r\\n\\r\\nUSER x\\r\\n"
        X: -ERR this is a POP3 server
        = state CLOSED
        = paused
        """,
    ),
}


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_transcript(name: str) -> None:
    config, script = TRANSCRIPTS[name]
    run(config, script)


LOGIN = "C: USER u\nE: User('u')\nC: PASS p\nE: Pass('p')\n= authenticated\n"
USER_GIVEN = "C: USER u\nE: User('u')\n"

ARGUMENT_ERRORS = [
    ("", "USER", "-ERR USER takes one argument: the user name"),
    ("", "USER a b", "-ERR USER takes one argument: the user name"),
    (USER_GIVEN, "PASS", "-ERR PASS takes one argument: the password"),
    ("", "CAPA x", "-ERR CAPA takes no arguments"),
    ("", "QUIT now", "-ERR QUIT takes no arguments"),
    ("", "STLS x", "-ERR STLS takes no arguments"),
    (LOGIN, "STAT 1", "-ERR STAT takes no arguments"),
    (LOGIN, "NOOP x", "-ERR NOOP takes no arguments"),
    (LOGIN, "RSET 1", "-ERR RSET takes no arguments"),
    (LOGIN, "LIST 1 2", "-ERR LIST takes at most one argument: a message number"),
    (LOGIN, "UIDL 1 2", "-ERR UIDL takes at most one argument: a message number"),
    (LOGIN, "RETR", "-ERR RETR takes one argument: a message number"),
    (LOGIN, "RETR 1 2", "-ERR RETR takes one argument: a message number"),
    (LOGIN, "DELE", "-ERR DELE takes one argument: a message number"),
    (LOGIN, "TOP 1", "-ERR TOP takes two arguments: a message number and a number of lines"),
    (LOGIN, "TOP 1 2 3", "-ERR TOP takes two arguments: a message number and a number of lines"),
]


@pytest.mark.parametrize(("setup", "line", "reply"), ARGUMENT_ERRORS)
def test_wrong_argument_count(setup: str, line: str, reply: str) -> None:
    # cleartext allowed and STLS offered, so every command gets as far as its arguments
    conn = run(Pop3Config(cleartext_auth=True), f"{setup}C: {line}\nS: {reply}")
    assert conn.errors == 1  # the error was counted, and the session goes on
    assert conn.state is not State.CLOSED


NUMBER = "-ERR a message number is a positive decimal integer"
LINES = "-ERR the number of lines is a non-negative decimal integer"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("RETR 1", "E: Retr(1)"),
        ("RETR 007", "E: Retr(7)"),
        ("RETR 4294967296", "E: Retr(4294967296)"),
        ("RETR  2", "E: Retr(2)"),
        ("RETR 0", f"S: {NUMBER}"),
        ("RETR +1", f"S: {NUMBER}"),
        ("RETR -1", f"S: {NUMBER}"),
        ("RETR 1x", f"S: {NUMBER}"),
        ("RETR x1", f"S: {NUMBER}"),
        ("RETR 1.0", f"S: {NUMBER}"),
        ("RETR 0x1", f"S: {NUMBER}"),
        ("RETR \uff11", f"S: {NUMBER}"),  # a fullwidth digit is not an ASCII digit
        ("DELE -3", f"S: {NUMBER}"),
        ("LIST 0", f"S: {NUMBER}"),
        ("UIDL a", f"S: {NUMBER}"),
        ("TOP 1 0", "E: Top(1, 0)"),
        ("TOP 3 99999999999999999999", "E: Top(3, 99999999999999999999)"),
        ("TOP 0 1", f"S: {NUMBER}"),
        ("TOP 1 -1", f"S: {LINES}"),
        ("TOP 1 +1", f"S: {LINES}"),
        ("TOP 1 1e3", f"S: {LINES}"),
    ],
)
def test_message_numbers(line: str, expected: str) -> None:
    run(TLS, f"{LOGIN}C: {line}\n{expected}")
