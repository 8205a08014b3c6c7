"""The token reader the command parsers share, and the limits they enforce.

Theory of operation
-------------------
The connection hands the parser one complete command as ``texts`` and ``literals``: the line
pieces between literals (each but the last ends with the literal's ``{n}`` marker, CRLF
removed) and the literal bytes themselves, already read in bulk. ``Reader`` walks that with a
cursor and never copies a literal: when a string argument is a literal it returns the bytes
object the connection sliced out of its buffer.

Every syntax error calls ``fail``, which raises ``ProtocolError`` carrying the tagged ``BAD``
and a sentence saying what was expected where; parsers never catch it. A mailbox name that is
well-formed IMAP syntax but not valid modified UTF-7 is no syntax error: it raises
``InvalidName``, a tagged ``NO [CANNOT]``, and the session goes on. Courriel refuses such a name
rather than take its bytes literally (as some servers do) because a name must have exactly one
spelling: the literal reading of ``&Jjo`` would be a second spelling of a name a UTF-8 client
can create. A LIST or LSUB pattern only chooses among existing names, so an invalid one is read
literally and simply matches what it matches; no pattern is refused. Tokens are matched with
compiled regular expressions anchored at the cursor (``pattern.match(buf, pos)``), so no
Python loop runs per byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from courriel.mail import flags as mailflags
from courriel.wire.errors import ProtocolError
from courriel.wire.imap import mutf7
from courriel.wire.imap.sequence import SequenceSet, SequenceSyntaxError, parse_sequence_set


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may ask of the parser; each overrun is a tagged BAD, not a crash."""

    max_line: int = 64 * 1024  # bytes of command text, literals excluded
    max_literal: int = 64 * 1024 * 1024  # bytes in one literal
    max_literals: int = 1000  # literals in one command (MULTIAPPEND of many messages)
    max_depth: int = 100  # nesting of parenthesised lists and search keys
    max_ranges: int = 10000  # ranges in one sequence set
    max_search_keys: int = 256  # keys in one SEARCH, NOT/OR/groups included
    max_search_string: int = 4096  # octets in one SEARCH string
    max_bad_commands: int = 20  # consecutive errors before BYE
    literal_minus_cap: int = 4096  # RFC 7888 §5: non-synchronising limit under LITERAL-


# RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials
ATOM_RE = re.compile(rb"[!#$&'+-\[^-z|}~]+")
ASTRING_RE = re.compile(rb"[!#$&'+-\[\]^-z|}~]+")
TAG_RE = re.compile(rb"[!#$&',-\[\]^-z|}~]+")  # ASTRING-CHAR except "+"
LIST_CHAR_RE = re.compile(rb"[!#$%&'*+-\[\]^-z|}~]+")  # ATOM-CHAR, list-wildcards, "]"
QUOTED_RE = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
LITERAL_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\Z")
NUMBER_RE = re.compile(rb"\d+")
SEQUENCE_RE = re.compile(rb"[0-9:,*$]+")
_UNESCAPE_RE = re.compile(rb"\\([\"\\])")

_SP, _LPAREN, _RPAREN, _DQUOTE, _LBRACE, _TILDE = 0x20, 0x28, 0x29, 0x22, 0x7B, 0x7E


class InvalidName(ProtocolError):  # noqa: N818 - reads as the refusal it sends
    """A mailbox name that is not valid modified UTF-7: a tagged NO, not a BAD."""

    def __init__(self, tag: str, what: str, why: str) -> None:
        # RFC 3501 §5.1.3: the name is refused, the command well-formed (RFC 5530 CANNOT)
        reply = f"{tag} NO [CANNOT] The {what} is not valid modified UTF-7: {why}\r\n"
        super().__init__(reply.encode())


class Reader:
    """A cursor over one command; every method either consumes a token or calls ``fail``."""

    __slots__ = ("_buf", "_i", "_lits", "_pos", "_texts", "depth", "keys", "limits", "tag", "utf8")

    def __init__(
        self, texts: list[bytes], literals: list[bytes], tag: str, limits: Limits, utf8: bool
    ) -> None:
        self._texts = texts
        self._lits = literals
        self._i = 0
        self._buf = texts[0]
        self._pos = 0
        self.tag = tag
        self.limits = limits
        self.utf8 = utf8
        self.depth = 0
        self.keys = 0  # search keys read so far (Limits.max_search_keys)

    # --- errors and position ------------------------------------------------------------------

    def fail(self, message: str) -> NoReturn:
        raise ProtocolError(f"{self.tag} BAD {message}\r\n".encode())

    def seek(self, pos: int) -> None:
        self._pos = pos

    @property
    def pos(self) -> int:
        return self._pos

    def at_end(self) -> bool:
        return self._pos >= len(self._buf) and self._i == len(self._texts) - 1

    def end(self) -> None:
        if not self.at_end():
            self.fail("Unexpected extra arguments")

    def rest(self) -> bytes | None:
        """The remaining text when no literal follows, else None (for parse caches)."""
        if self._i != len(self._texts) - 1:
            return None
        return self._buf[self._pos :]

    def skip_rest(self) -> None:
        self._pos = len(self._buf)

    def peek(self) -> int:
        return self._buf[self._pos] if self._pos < len(self._buf) else -1

    def sp(self, what: str) -> None:
        if self.peek() != _SP:
            self.fail(f"Expected {what}")
        self._pos += 1

    def maybe_sp(self) -> bool:
        if self.peek() == _SP:
            self._pos += 1
            return True
        return False

    def char(self, c: int, what: str) -> None:
        if self.peek() != c:
            self.fail(f"Expected {what}")
        self._pos += 1

    def maybe_char(self, c: int) -> bool:
        if self.peek() == c:
            self._pos += 1
            return True
        return False

    def open_paren(self, what: str) -> None:
        self.char(_LPAREN, what)
        self.enter()

    def close_paren(self, what: str = "')'") -> None:
        self.char(_RPAREN, what)
        self.depth -= 1

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            self.fail(f"Too deeply nested (limit {self.limits.max_depth})")

    # --- tokens -------------------------------------------------------------------------------

    def match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        m = pattern.match(self._buf, self._pos)
        if m is None:
            return None
        self._pos = m.end()
        return m.group()

    def atom(self, what: str) -> bytes:
        token = self.match(ATOM_RE)
        if token is None:
            self.fail(f"Expected {what}")
        return token

    def match_keyword(self) -> str | None:
        """The next atom upper-cased, or None (nothing consumed) when there is none."""
        token = self.match(ATOM_RE)
        return None if token is None else token.decode("ascii").upper()

    def keyword(self, what: str) -> str:
        return self.atom(what).decode("ascii").upper()

    def number(self, what: str, *, bits: int = 32, nonzero: bool = False) -> int:
        token = self.match(NUMBER_RE)
        # RFC 9051 §9: number is 32 bits, number64 is 63 bits
        if token is None or len(token) > 20 or int(token) >= 1 << (63 if bits == 64 else 32):
            self.fail(f"Expected {what}")
        value = int(token)
        if nonzero and value == 0:
            self.fail(f"Expected {what} (non-zero)")
        return value

    def sequence_set(self, what: str, *, allow_saved: bool = True) -> SequenceSet:
        token = self.match(SEQUENCE_RE)
        if token is None:
            self.fail(f"Expected {what}")
        try:
            return parse_sequence_set(token, self.limits.max_ranges, allow_saved=allow_saved)
        except SequenceSyntaxError as e:
            self.fail(f"{e} in {what}")

    def literal_ahead(self) -> bool:
        c = self.peek()
        return c == _LBRACE or (
            c == _TILDE and self._pos + 1 < len(self._buf) and self._buf[self._pos + 1] == _LBRACE
        )

    def literal(self, what: str, *, allow_binary: bool = False) -> tuple[bytes, bool]:
        """The next literal's bytes and whether it was a literal8 (``~{n}``)."""
        m = LITERAL_RE.match(self._buf, self._pos)
        if m is None or self._i >= len(self._lits):
            self.fail(f"Expected {what} (a literal must end its line)")
        binary = bool(m.group(1))
        if binary and not allow_binary:
            self.fail(f"literal8 is not allowed in {what}")
        data = self._lits[self._i]
        self._i += 1
        self._buf = self._texts[self._i]
        self._pos = 0
        return data, binary

    def string(self, what: str) -> bytes:
        if self.peek() == _DQUOTE:
            m = QUOTED_RE.match(self._buf, self._pos)
            if m is None:
                self.fail(f"Expected {what} (bad quoted string)")
            self._pos = m.end()
            raw = m.group(1)
            return _UNESCAPE_RE.sub(rb"\1", raw) if b"\\" in raw else raw
        if not self.literal_ahead():
            self.fail(f"Expected {what}")
        return self.literal(what)[0]

    def astring(self, what: str) -> bytes:
        if self.literal_ahead():  # "~" is an atom character, but "~{" starts a literal8
            return self.string(what)
        token = self.match(ASTRING_RE)
        return token if token is not None else self.string(what)

    def nstring(self, what: str) -> bytes | None:
        save = self._pos
        token = self.match(ATOM_RE)
        if token is not None:
            if token.upper() == b"NIL":
                return None
            self._pos = save
        return self.string(what)

    def text(self, data: bytes, what: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"{what} is not valid UTF-8")

    def astring_text(self, what: str) -> str:
        return self.text(self.astring(what), what)

    # --- mailbox names, patterns, flags -------------------------------------------------------

    def _decode_name(self, data: bytes, what: str, *, pattern: bool = False) -> str:
        if self.utf8:
            return self.text(data, what)  # RFC 9051 §5.1: UTF-8 once rev2/UTF8=ACCEPT is on
        try:
            return mutf7.decode(data)  # RFC 3501 §5.1.3
        except mutf7.MUTF7Error as e:
            if pattern:
                return data.decode("ascii", "replace")  # read literally: see the docstring
            raise InvalidName(self.tag, what, str(e)) from e

    def mailbox(self, what: str = "mailbox name", *, inbox: bool = True) -> str:
        """A mailbox name; ``inbox=False`` for a LIST reference: the case of "inbox" is kept
        and, like a pattern, an invalid one is read literally."""
        name = self._decode_name(self.astring(what), what, pattern=not inbox)
        # RFC 9051 §5.1: INBOX is case-insensitive
        return "INBOX" if inbox and name.upper() == "INBOX" else name

    def list_mailbox(self, what: str = "mailbox pattern") -> str:
        token = None if self.literal_ahead() else self.match(LIST_CHAR_RE)
        data = token if token is not None else self.string(what)
        return self._decode_name(data, what, pattern=True)

    def flag(self, what: str = "flag") -> str:
        if self.maybe_char(0x5C):  # "\": a system flag or flag-extension
            name = self.atom(what).decode("ascii")
            return mailflags.canonical("\\" + name)
        return self.atom(what).decode("ascii")

    def flag_list(self, what: str = "flag list") -> frozenset[str]:
        self.open_paren(what)
        flags: list[str] = []
        if self.peek() != _RPAREN:
            flags.append(self.flag())
            while self.maybe_sp():
                flags.append(self.flag())
        self.close_paren(f"')' to end the {what}")
        return frozenset(flags)
