"""POP3 command events and the parser that turns one command line into one of them.

Theory of operation
-------------------
``parse_command`` sees one line, without its line end, already known to fit the line limit. It
splits off the keyword (case-insensitive, RFC 1939 §3), looks it up in ``PARSERS`` and lets the
command's own parser check the argument count and shape. It knows nothing about state: whether a
command is legal *now* is decided by the table at the top of ``core.py``. Every failure is a
``ProtocolError`` whose reply is one ``-ERR`` sentence naming what was wrong; nothing from the
client is echoed back, so a reply can never carry injected bytes.

Each event is a frozen slotted dataclass. The unions ``AuthorizationCommand`` and
``TransactionCommand`` say in which state a command is legal, so a session can ``match`` on the
union of its state and end with ``assert_never``. CAPA and QUIT are legal in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from courriel.wire import sasl
from courriel.wire.errors import ProtocolError
from courriel.wire.pop3 import replies

# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """USER name (RFC 1939 §7)."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """PASS password (RFC 1939 §7); only ever right after USER. Kept out of ``repr``."""

    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH mechanism [initial-response] (RFC 5034 §4).

    ``mechanism`` is upper-case and one the connection offers now. ``initial_response`` is the
    decoded initial response: ``None`` when the client sent none, ``b""`` for "=" (empty).
    """

    mechanism: str
    initial_response: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """One client line of a SASL exchange, after the session sent a challenge (RFC 5034 §4).

    ``data`` is the decoded response. ``cancelled`` is true when the client sent "*": the
    session must then fail the AUTH command with a negative reply.
    """

    data: bytes = field(repr=False)
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Capa:
    """CAPA (RFC 2449 §5); legal in both AUTHORIZATION and TRANSACTION."""


@dataclass(frozen=True, slots=True)
class Stls:
    """STLS (RFC 2595 §4); the core pauses until ``tls_started`` or ``stls_declined``."""


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT: ends AUTHORIZATION (no UPDATE) or enters UPDATE from TRANSACTION (RFC 1939 §6)."""


@dataclass(frozen=True, slots=True)
class Stat:
    """STAT (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class List:
    """LIST [msg] (RFC 1939 §5); ``msg`` None asks for the whole scan listing."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Retr:
    """RETR msg (RFC 1939 §5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Dele:
    """DELE msg (RFC 1939 §5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class Rset:
    """RSET (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class Top:
    """TOP msg n (RFC 1939 §7): the header, the blank line and ``lines`` lines of the body."""

    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    """UIDL [msg] (RFC 1939 §7); ``msg`` None asks for the whole listing."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class NeedData:
    """No complete line is buffered: feed more bytes with ``receive_data``."""


@dataclass(frozen=True, slots=True)
class Paused:
    """The core reads nothing now: after STLS until the session says how it went, after QUIT."""


NEED_DATA = NeedData()
PAUSED = Paused()

AuthorizationCommand = User | Pass | Auth | Capa | Stls | Quit
TransactionCommand = Stat | List | Retr | Dele | Noop | Rset | Top | Uidl | Capa | Quit
Command = AuthorizationCommand | TransactionCommand
Event = Command | AuthResponse | NeedData | Paused

# --- parsing ----------------------------------------------------------------------------------

# Octets that never belong in a command line: C0 controls and DEL. A bare CR inside a line, a NUL
# or an escape sequence is either an attack on a log or a client that is not speaking POP3.
_CONTROLS = bytes(range(0x20)) + b"\x7f"

# RFC 4422 §3.1: mechanism names are 1-20 characters of upper-case letters, digits, "-" and "_".
_MECHANISM_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _err(text: str) -> ProtocolError:
    return ProtocolError(replies.err(text))


def _no_args(name: str) -> Callable[[list[bytes], bytes], Command]:
    def parse(args: list[bytes], rest: bytes) -> Command:
        if args:
            raise _err(f"{name} takes no arguments")
        return _SIMPLE[name]

    return parse


def _message_number(arg: bytes) -> int:
    """A message number: a positive decimal integer, digits only (RFC 1939 §3)."""
    # bytes.isdigit is ASCII-only, so "+1", "-1", " 1", "1x" and non-ASCII digits all fail here.
    if not arg.isdigit():
        raise _err("a message number is a positive decimal integer")
    n = int(arg)
    if n == 0:  # RFC 1939 §3: the first message in the maildrop is message 1
        raise _err("a message number is a positive decimal integer")
    return n


def _text(arg: bytes, what: str) -> str:
    try:
        return arg.decode("utf-8")
    except UnicodeDecodeError:
        raise _err(f"the {what} is not valid UTF-8") from None


def _user(args: list[bytes], rest: bytes) -> Command:
    if len(args) != 1:
        raise _err("USER takes one argument: the user name")
    return User(_text(args[0], "user name"))


def _pass(args: list[bytes], rest: bytes) -> Command:
    # RFC 1939 §7: the password is the rest of the line, spaces included.
    if not rest:
        raise _err("PASS takes one argument: the password")
    return Pass(_text(rest, "password"))


def _base64(arg: bytes, what: str, *, initial: bool) -> bytes:
    # The shared SASL decoder: strict, canonical base64 (RFC 4648 §3.3, §3.5) with a size cap,
    # and "=" for an empty initial response (RFC 5034 §4).
    try:
        return sasl.decode_response(arg, initial=initial)
    except sasl.SaslError as e:
        if e.failure is sasl.SaslFailure.MALFORMED:
            raise _err(f"the {what} is too long") from None
        raise _err(f"the {what} is not valid base64") from None


def _auth(args: list[bytes], rest: bytes) -> Command:
    if not 1 <= len(args) <= 2:
        raise _err("AUTH takes a mechanism name and an optional initial response")
    mechanism = args[0].upper()
    if not 1 <= len(mechanism) <= 20 or not _MECHANISM_CHARS.issuperset(mechanism):
        raise _err("that is not a SASL mechanism name")
    initial: bytes | None = None
    if len(args) == 2:
        initial = _base64(args[1], "initial response", initial=True)
    return Auth(mechanism.decode("ascii"), initial)


def _optional_msg(
    name: str, cls: type[List] | type[Uidl]
) -> Callable[[list[bytes], bytes], Command]:
    def parse(args: list[bytes], rest: bytes) -> Command:
        if len(args) > 1:
            raise _err(f"{name} takes at most one argument: a message number")
        return cls(_message_number(args[0]) if args else None)

    return parse


def _one_msg(name: str, cls: type[Retr] | type[Dele]) -> Callable[[list[bytes], bytes], Command]:
    def parse(args: list[bytes], rest: bytes) -> Command:
        if len(args) != 1:
            raise _err(f"{name} takes one argument: a message number")
        return cls(_message_number(args[0]))

    return parse


def _top(args: list[bytes], rest: bytes) -> Command:
    if len(args) != 2:
        raise _err("TOP takes two arguments: a message number and a number of lines")
    msg = _message_number(args[0])
    if not args[1].isdigit():  # RFC 1939 §7: a non-negative number of lines
        raise _err("the number of lines is a non-negative decimal integer")
    return Top(msg, int(args[1]))


_SIMPLE: dict[str, Command] = {
    "CAPA": Capa(),
    "STLS": Stls(),
    "QUIT": Quit(),
    "STAT": Stat(),
    "NOOP": Noop(),
    "RSET": Rset(),
}

# Upper-case keyword -> parser(arguments split on spaces, the raw rest of the line).
PARSERS: dict[bytes, Callable[[list[bytes], bytes], Command]] = {
    b"USER": _user,
    b"PASS": _pass,
    b"AUTH": _auth,
    b"LIST": _optional_msg("LIST", List),
    b"UIDL": _optional_msg("UIDL", Uidl),
    b"RETR": _one_msg("RETR", Retr),
    b"DELE": _one_msg("DELE", Dele),
    b"TOP": _top,
    **{name.encode("ascii"): _no_args(name) for name in _SIMPLE},
}

# Request lines of other protocols. A browser made to post a form to port 110 sends these first
# (cross-protocol attacks such as ALPACA); closing at once keeps the rest of the request from
# being read as POP3 commands.
FOREIGN_KEYWORDS = frozenset({b"GET", b"POST", b"PUT", b"HEAD", b"CONNECT", b"OPTIONS"})


def split_command(line: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(upper-case keyword, arguments, raw rest after the first space) of one command line."""
    if line.translate(None, _CONTROLS) != line:
        raise _err("control characters are not allowed in a command")
    keyword, _, rest = line.partition(b" ")
    # RFC 1939 §3 asks for single spaces; runs of spaces are forgiven, they change no meaning.
    return keyword.upper(), [a for a in rest.split(b" ") if a], rest


def parse_command(keyword: bytes, args: list[bytes], rest: bytes) -> Command:
    """The event for a known keyword; a ``ProtocolError`` for bad arguments."""
    return PARSERS[keyword](args, rest)


def parse_sasl_response(line: bytes) -> AuthResponse:
    """One line of a SASL exchange (RFC 5034 §4): "*" cancels, anything else is base64."""
    if line == b"*":
        return AuthResponse(b"", cancelled=True)
    # RFC 5034 §4: a response that does not decode fails the AUTH command.
    return AuthResponse(_base64(line, "authentication response", initial=False))
