"""A strict reader of IMAP response data, to check pre-encoded ENVELOPE and BODYSTRUCTURE.

It accepts exactly: parenthesised lists, quoted strings (RFC 9051 §4.3 escaping, 7-bit, no
CR/LF), literals whose length is right, NIL and numbers, separated by single spaces. Addresses
inside an address list follow each other without a space, so ``)(`` is accepted too.
"""

from __future__ import annotations

import re

Item = bytes | int | None | list["Item"]

_NUMBER = re.compile(rb"\d+")
_LITERAL = re.compile(rb"\{(\d+)\}\r\n")


class ReadError(ValueError):
    pass


def read(data: bytes) -> Item:
    """The one item ``data`` holds; raises ``ReadError`` on anything else."""
    item, pos = _item(data, 0)
    if pos != len(data):
        raise ReadError(f"trailing bytes at {pos}")
    return item


def _item(data: bytes, pos: int) -> tuple[Item, int]:
    if data.startswith(b"(", pos):
        return _list(data, pos + 1)
    if data.startswith(b'"', pos):
        return _quoted(data, pos + 1)
    if data.startswith(b"NIL", pos):
        return None, pos + 3
    m = _LITERAL.match(data, pos)
    if m is not None:
        end = m.end() + int(m.group(1))
        if end > len(data):
            raise ReadError("literal runs past the end")
        value = data[m.end() : end]
        if b"\x00" in value:
            raise ReadError("NUL in a literal")
        return value, end
    m = _NUMBER.match(data, pos)
    if m is not None:
        return int(m.group(0)), m.end()
    raise ReadError(f"unexpected byte at {pos}: {data[pos : pos + 10]!r}")


def _list(data: bytes, pos: int) -> tuple[Item, int]:
    items: list[Item] = []
    while True:
        if data.startswith(b")", pos):
            return items, pos + 1
        if items:
            if data.startswith(b" ", pos):
                pos += 1
            elif not (data.startswith(b"(", pos) and data[pos - 1 : pos] == b")"):
                raise ReadError(f"missing separator at {pos}")
        item, pos = _item(data, pos)
        items.append(item)


def _quoted(data: bytes, pos: int) -> tuple[Item, int]:
    out = bytearray()
    while pos < len(data):
        c = data[pos]
        if c == 0x22:
            return bytes(out), pos + 1
        if c == 0x5C:
            if pos + 1 >= len(data) or data[pos + 1] not in b'"\\':
                raise ReadError("bad escape in a quoted string")
            out.append(data[pos + 1])
            pos += 2
            continue
        if c in (0, 0x0A, 0x0D) or c > 0x7F:
            raise ReadError(f"byte {c:#x} in a quoted string")
        out.append(c)
        pos += 1
    raise ReadError("unterminated quoted string")
