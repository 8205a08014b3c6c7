"""SASL server mechanisms PLAIN and LOGIN, shared by SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH.

Theory of operation
-------------------
Each protocol frames a SASL exchange its own way (SMTP ``334 <base64>``, IMAP and POP3
``+ <base64>``; the client answers with a base64 line or ``*`` to cancel), so this core deals in
decoded challenges and raw client lines and leaves framing to the protocol core:

    exchange = SaslExchange()
    step = exchange.start("PLAIN", initial_response)   # initial_response: base64 bytes or None
    while isinstance(step, Challenge):
        send(base64(step.data)); step = exchange.step(read_line())
    credentials = step                                  # Credentials(authcid, password, authzid)

``start`` takes the initial response exactly as the client sent it (RFC 4954 §4, RFC 4959,
RFC 5034 §4): ``None`` when there was none, ``b"="`` for an empty one. ``step`` takes one client
line, with or without its CRLF. Protocol cores that already decode base64 and recognise "*"
themselves call ``start_decoded`` / ``step_decoded`` with the decoded bytes instead (and simply
drop the exchange when the client cancels); both paths share every other rule.

Base64 is decoded strictly (RFC 4648 §3.3, §3.5): no characters outside the alphabet, no white
space, correct padding, zero pad bits. Anything wrong raises ``SaslError`` whose ``failure`` the
protocol turns into its reply (for SMTP, RFC 4954 §4: 501 for bad base64 and for "*", 504 for an
unknown mechanism, 535 for a refused authzid).

The result carries the password as text; checking it is the session's business
(``courriel.accounts.authenticator``). No I/O, no asyncio, no store.

States and the inputs each accepts:

    state              input          next state          output   (``*_decoded`` alike)
    START              start(PLAIN)   PLAIN_RESPONSE      Challenge(b"")     (no initial response)
    START              start(PLAIN)   DONE                Credentials        (initial response)
    START              start(LOGIN)   LOGIN_USERNAME      Challenge(b"Username:")
    START              start(LOGIN)   LOGIN_PASSWORD      Challenge(b"Password:") (initial resp.)
    PLAIN_RESPONSE     step           DONE                Credentials
    LOGIN_USERNAME     step           LOGIN_PASSWORD      Challenge(b"Password:")
    LOGIN_PASSWORD     step           DONE                Credentials
    any but DONE       bad input      FAILED              SaslError
Calling ``start`` or ``step`` in any other state is a bug in the caller (``RuntimeError``).
"""

from __future__ import annotations

import binascii
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

MECHANISMS = ("PLAIN", "LOGIN")  # in the order servers usually advertise them

# RFC 4616 §2 asks servers to take at least 255 octets per field; 3 fields with margin.
MAX_RESPONSE_OCTETS = 4096
_MAX_BASE64_OCTETS = (MAX_RESPONSE_OCTETS + 2) // 3 * 4
USERNAME_CHALLENGE = b"Username:"  # draft-murchison-sasl-login-00 §2.1
PASSWORD_CHALLENGE = b"Password:"


class SaslFailure(enum.Enum):
    UNKNOWN_MECHANISM = "unknown mechanism"
    BAD_BASE64 = "bad base64"
    CANCELLED = "cancelled by the client"
    MALFORMED = "malformed response"
    AUTHZID_REFUSED = "authorization identity refused"


class SaslError(Exception):
    """The exchange failed; ``failure`` says how, the message says it in words."""

    def __init__(self, failure: SaslFailure, detail: str) -> None:
        super().__init__(f"{failure.value}: {detail}")
        self.failure = failure
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes  # to be base64-encoded and sent by the protocol core


@dataclass(frozen=True, slots=True)
class Credentials:
    authcid: str  # the identity whose password was given (an address for courriel)
    password: str
    authzid: str = ""  # identity to act as; empty or the same as authcid


class SaslState(enum.Enum):
    START = enum.auto()
    PLAIN_RESPONSE = enum.auto()
    LOGIN_USERNAME = enum.auto()
    LOGIN_PASSWORD = enum.auto()
    DONE = enum.auto()
    FAILED = enum.auto()


_AWAITING = frozenset(
    {SaslState.PLAIN_RESPONSE, SaslState.LOGIN_USERNAME, SaslState.LOGIN_PASSWORD}
)


def decode_response(data: bytes, *, initial: bool) -> bytes:
    """Decodes one client response; raises ``SaslError`` for "*" or bad base64."""
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if data == b"*":
        # RFC 4954 §4, RFC 9051 §6.2.2, RFC 5034 §4: "*" cancels the exchange.
        raise SaslError(SaslFailure.CANCELLED, "the client cancelled the authentication")
    if initial and data == b"=":
        return b""  # RFC 4954 §4: "=" is an initial response of zero length
    if len(data) > _MAX_BASE64_OCTETS:
        raise SaslError(SaslFailure.MALFORMED, f"response longer than {MAX_RESPONSE_OCTETS} bytes")
    try:
        decoded = binascii.a2b_base64(data, strict_mode=True)  # RFC 4648 §3.3
    except binascii.Error:
        raise SaslError(SaslFailure.BAD_BASE64, "the response is not valid base64") from None
    if binascii.b2a_base64(decoded, newline=False) != data:
        # RFC 4648 §3.5: non-zero pad bits would let two encodings mean the same bytes.
        raise SaslError(SaslFailure.BAD_BASE64, "the response is not canonical base64")
    return decoded


def _text(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")  # RFC 4616 §2: UTF-8 throughout
    except UnicodeDecodeError:
        raise SaslError(SaslFailure.MALFORMED, f"the {what} is not UTF-8") from None
    if not text:
        raise SaslError(SaslFailure.MALFORMED, f"the {what} is empty")
    if "\0" in text:
        raise SaslError(SaslFailure.MALFORMED, f"the {what} contains NUL")
    return text


def _same_identity(authzid: str, authcid: str) -> bool:
    # Identities are addresses, which courriel matches case-insensitively.
    return authzid == authcid or authzid.lower() == authcid.lower()


def parse_plain(message: bytes) -> Credentials:
    """RFC 4616 §2: ``[authzid] NUL authcid NUL passwd``; proxy authorization is refused."""
    parts = message.split(b"\0")
    if len(parts) != 3:
        raise SaslError(
            SaslFailure.MALFORMED, "PLAIN needs authzid, authcid and password separated by NUL"
        )
    authzid_raw, authcid_raw, password_raw = parts
    authcid = _text(authcid_raw, "username")
    password = _text(password_raw, "password")
    authzid = _text(authzid_raw, "authorization identity") if authzid_raw else ""
    if authzid and not _same_identity(authzid, authcid):
        # RFC 4616 §2: the server decides whether authcid may act as authzid; we never allow it.
        raise SaslError(
            SaslFailure.AUTHZID_REFUSED, "acting as another user (proxy authorization) is refused"
        )
    return Credentials(authcid=authcid, password=password, authzid=authzid)


class SaslExchange:
    """One authentication attempt on the server side; use a new one for each attempt."""

    __slots__ = ("_state", "_username", "mechanism")

    def __init__(self) -> None:
        self._state = SaslState.START
        self._username = ""
        self.mechanism = ""

    @property
    def state(self) -> SaslState:
        return self._state

    def start(self, mechanism: str, initial_response: bytes | None) -> Challenge | Credentials:
        """Begins the exchange from the initial response as sent (base64, "=" or "*")."""
        self._expect_start()
        decoded = None
        if initial_response is not None:
            decoded = self._guard(decode_response, initial_response, initial=True)
        return self.start_decoded(mechanism, decoded)

    def start_decoded(self, mechanism: str, initial: bytes | None) -> Challenge | Credentials:
        """Begins the exchange from an already decoded initial response (``b""`` for "=").

        For protocol cores that decode base64 themselves. Returns the first challenge, or the
        credentials when the initial response completed the exchange.
        """
        self._expect_start()
        self.mechanism = mechanism.upper()  # RFC 4422 §3.1: names are upper-case
        if self.mechanism == "PLAIN":
            return self._guard(self._start_plain, initial)
        if self.mechanism == "LOGIN":
            return self._guard(self._start_login, initial)
        self._state = SaslState.FAILED
        raise SaslError(SaslFailure.UNKNOWN_MECHANISM, f"{mechanism!r} is not supported")

    def step(self, line: bytes) -> Challenge | Credentials:
        """Feeds one client line as sent (base64 or "*"); the next challenge or the credentials."""
        self._expect_step()
        return self.step_decoded(self._guard(decode_response, line, initial=False))

    def step_decoded(self, response: bytes) -> Challenge | Credentials:
        """Feeds one already decoded client response."""
        self._expect_step()
        if self._state is SaslState.PLAIN_RESPONSE:
            return self._finish(self._guard(parse_plain, response))
        if self._state is SaslState.LOGIN_USERNAME:
            return self._guard(self._got_username, response)
        password = self._guard(_text, response, "password")
        return self._finish(Credentials(authcid=self._username, password=password))

    def _expect_start(self) -> None:
        if self._state is not SaslState.START:
            raise RuntimeError(f"start called in state {self._state.name}")

    def _expect_step(self) -> None:
        if self._state not in _AWAITING:
            raise RuntimeError(f"step called in state {self._state.name}")

    def _guard(self, f: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Runs ``f``; a ``SaslError`` out of it ends the exchange in FAILED."""
        try:
            return f(*args, **kwargs)
        except SaslError:
            self._state = SaslState.FAILED
            self._username = ""
            raise

    def _start_plain(self, initial: bytes | None) -> Challenge | Credentials:
        if initial is None:
            self._state = SaslState.PLAIN_RESPONSE
            return Challenge(b"")  # RFC 4616 §2: the server's first challenge is empty
        return self._finish(parse_plain(initial))

    def _start_login(self, initial: bytes | None) -> Challenge:
        if initial is None:
            self._state = SaslState.LOGIN_USERNAME
            return Challenge(USERNAME_CHALLENGE)
        # draft-murchison-sasl-login-00 §2.1: an initial response carries the user name.
        return self._got_username(initial)

    def _got_username(self, response: bytes) -> Challenge:
        self._username = _text(response, "username")
        self._state = SaslState.LOGIN_PASSWORD
        return Challenge(PASSWORD_CHALLENGE)

    def _finish(self, credentials: Credentials) -> Credentials:
        self._state = SaslState.DONE
        self._username = ""
        return credentials
