"""Sieve tokens (RFC 5228 §8.1): identifiers, tags, numbers, strings and punctuation.

Theory of operation
-------------------
``tokenize`` turns a whole script (bytes, UTF-8 per RFC 5228 §2.4.2) into a list of ``Token``
in one pass over the text, with the index advancing on every iteration, so its cost is linear
in the script's size. The size of the script and of every string literal is bounded
(``Limits``); anything malformed is a ``SieveError`` naming the line.

Strings keep their text with escapes already removed (RFC 5228 §2.4.2: in a quoted string a
backslash escapes the next character; in a multi-line string a leading ".." loses one dot).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from courriel.sieve.errors import LimitExceeded, SieveError
from courriel.sieve.limits import Limits


class Kind(enum.Enum):
    IDENT = "identifier"
    TAG = "tag"
    NUMBER = "number"
    STRING = "string"
    PUNCT = "punctuation"
    END = "end of script"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    value: str  # identifier and tag names lower-cased (RFC 5228 §2.9: case-insensitive)
    line: int
    number: int = 0


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"([0-9]+)([KkMmGg]?)")
_MULTILINE_START = re.compile(r"text:[ \t]*(#[^\r\n]*)?\r?\n")
_QUANTIFIER = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}  # RFC 5228 §2.4.1
_MAX_NUMBER = (1 << 63) - 1
_PUNCT = frozenset(";,[]{}()")


def _string_limit(text: str, limits: Limits, line: int) -> None:
    if len(text.encode("utf-8")) > limits.string_bytes:
        raise LimitExceeded(f"a string is longer than {limits.string_bytes} bytes", line)


def _quoted(src: str, i: int, line: int, limits: Limits) -> tuple[str, int, int]:
    """The quoted string starting after the opening quote at ``i``: text, next index, lines."""
    out: list[str] = []
    start = i
    lines = 0
    while True:
        j = src.find('"', i)
        if j < 0:
            raise SieveError("a quoted string is never closed", line)
        k = src.find("\\", i, j)  # bounded by j: each string costs its own length only
        if k >= 0:
            out.append(src[i:k])
            if k + 1 >= len(src):
                raise SieveError("a quoted string is never closed", line)
            out.append(src[k + 1])  # RFC 5228 §2.4.2: "\\" and '\"'; others drop the "\"
            i = k + 2
            continue
        out.append(src[i:j])
        text = "".join(out)
        lines = src.count("\n", start, j)
        _string_limit(text, limits, line)
        return text, j + 1, lines


def _multiline(src: str, i: int, line: int, limits: Limits) -> tuple[str, int, int]:
    """The body of a "text:" string from ``i`` (the start of its first line)."""
    out: list[str] = []
    lines = 0
    size = 0
    while True:
        end = src.find("\n", i)
        if end < 0:
            raise SieveError('a multi-line string is never closed with a "." line', line)
        raw = src[i : end + 1]
        lines += 1
        if raw.rstrip("\r\n") == ".":
            return "".join(out), end + 1, lines
        if raw.startswith(".."):
            raw = raw[1:]  # RFC 5228 §2.4.2: dot-stuffing
        if not raw.endswith("\r\n"):
            raw = raw[:-1] + "\r\n"  # the text is CRLF whatever the script file used
        size += len(raw)
        if size > limits.string_bytes:
            raise LimitExceeded(f"a string is longer than {limits.string_bytes} bytes", line)
        out.append(raw)
        i = end + 1


def decode_script(script: bytes, limits: Limits) -> str:
    if len(script) > limits.script_bytes:
        raise LimitExceeded(f"the script is larger than {limits.script_bytes} bytes")
    try:
        return script.decode("utf-8")  # RFC 5228 §2.4.2
    except UnicodeDecodeError as e:
        line = script[: e.start].count(b"\n") + 1
        raise SieveError("the script is not valid UTF-8", line) from None


def tokenize(script: bytes, limits: Limits) -> list[Token]:
    src = decode_script(script, limits)
    tokens: list[Token] = []
    i, line, n = 0, 1, len(src)
    while i < n:
        ch = src[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch in " \t\r":
            i += 1
        elif ch == "#":  # RFC 5228 §2.3: hash comment to the end of the line
            end = src.find("\n", i)
            i = n if end < 0 else end
        elif src.startswith("/*", i):  # bracketed comment, not nested
            end = src.find("*/", i + 2)
            if end < 0:
                raise SieveError("a /* comment is never closed", line)
            line += src.count("\n", i, end)
            i = end + 2
        elif ch in _PUNCT:
            tokens.append(Token(Kind.PUNCT, ch, line))
            i += 1
        elif ch == '"':
            text, i, lines = _quoted(src, i + 1, line, limits)
            tokens.append(Token(Kind.STRING, text, line))
            line += lines
        elif ch == ":":
            m = _IDENT.match(src, i + 1)
            if m is None:
                raise SieveError('":" must be followed by a tag name', line)
            tokens.append(Token(Kind.TAG, ":" + m.group().lower(), line))
            i = m.end()
        elif "0" <= ch <= "9":
            m = _NUMBER.match(src, i)
            assert m is not None
            value = int(m.group(1)) * _QUANTIFIER[m.group(2).lower()]
            if value > _MAX_NUMBER:
                raise SieveError(f"the number {m.group()} is too large", line)
            tokens.append(Token(Kind.NUMBER, m.group(), line, value))
            i = m.end()
        else:
            m = _MULTILINE_START.match(src, i) if src.startswith("text:", i) else None
            if m is not None:
                text, i, lines = _multiline(src, m.end(), line, limits)
                tokens.append(Token(Kind.STRING, text, line))
                line += lines
                continue
            m = _IDENT.match(src, i)
            if m is None:
                raise SieveError(f"unexpected character {ch!r}", line)
            tokens.append(Token(Kind.IDENT, m.group().lower(), line))
            i = m.end()
    tokens.append(Token(Kind.END, "", line))
    return tokens
