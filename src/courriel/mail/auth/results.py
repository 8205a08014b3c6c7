"""Authentication-Results (RFC 8601): writing ours, removing forged ones that claim our name.

Theory of operation
-------------------
``authentication_results`` writes one field: our authserv-id (the host name), then one
``method=result`` clause per check with its properties -- ``smtp.mailfrom`` / ``smtp.helo`` for
SPF, ``header.d``, ``header.s``, ``header.a`` and ``header.b`` (RFC 6008) for each DKIM
signature, ``header.from`` for DMARC -- and a ``reason="..."`` in plain words for any result that
is not a pass. Values that are not RFC 2045 tokens are quoted, so a hostile domain or reason
cannot inject a clause.

``strip_ours`` removes every earlier Authentication-Results field whose authserv-id is ours
(RFC 8601 §5: a receiver must not let a message arrive carrying results in its name). It reads
only the header, keeps every other byte as it was, and returns the message unchanged (the same
object, no copy) when there is nothing to remove.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

FIELD = b"Authentication-Results"
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~@/]+")  # RFC 2045 token, plus "@" and "/"
_LINE_LIMIT = 76


@dataclass(frozen=True, slots=True)
class Clause:
    """One ``method=result`` with its reason and ``ptype.property=value`` pairs."""

    method: str  # "spf", "dkim", "dmarc"
    result: str
    reason: str = ""
    properties: tuple[tuple[str, str], ...] = ()


def _value(text: str) -> str:
    if _TOKEN.fullmatch(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c for c in escaped if c.isprintable()) + '"'


def _clause(c: Clause) -> str:
    parts = [f"{c.method}={c.result}"]
    if c.reason:
        parts.append(f"reason={_value(c.reason)}")  # RFC 8601 §2.2: reasonspec
    parts += [f"{name}={_value(value)}" for name, value in c.properties if value]
    return " ".join(parts)


def authentication_results(authserv_id: str, clauses: Sequence[Clause]) -> bytes:
    """The whole field, folded, ending in CRLF; ``none`` when there is no clause (§2.2)."""
    items = [_clause(c) for c in clauses] or ["none"]
    lines = [f"{FIELD.decode()}: {authserv_id};"]
    for i, item in enumerate(items):
        text = item + (";" if i < len(items) - 1 else "")
        for word in _fold(text):
            lines.append(" " + word)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _fold(text: str) -> list[str]:
    """``text`` cut at spaces outside quotes into lines of about ``_LINE_LIMIT`` characters."""
    out: list[str] = []
    current = ""
    for word in re.findall(r'(?:"(?:\\.|[^"\\])*"|[^\s"])+', text):
        if current and len(current) + 1 + len(word) > _LINE_LIMIT:
            out.append(current)
            current = "  " + word  # a continuation of the same clause, indented once more
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return out


# --- removing forged results ----------------------------------------------------------------------


def _authserv_id(value: bytes) -> str:
    """The authserv-id at the start of a field value, comments and quotes removed."""
    text = value.decode("utf-8", "replace")
    while True:
        text = text.lstrip()
        if not text.startswith("("):
            break
        depth, i = 0, 0
        for i, ch in enumerate(text):  # noqa: B007 - i is the end of the comment
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                break
        text = text[i + 1 :]
    m = re.match(r'"((?:\\.|[^"\\])*)"|([^\s;()]+)', text)
    if m is None:
        return ""
    return (m.group(1) if m.group(1) is not None else m.group(2)).lower()


def strip_ours(message: bytes, authserv_id: str) -> bytes:
    """``message`` without the Authentication-Results fields that carry ``authserv_id``."""
    end = message.find(b"\r\n\r\n")
    head_len = len(message) if end < 0 else end + 2
    if b"authentication-results" not in message[:head_len].lower():
        return message
    ours = authserv_id.rstrip(".").lower()
    fields: list[bytes] = []
    for line in message[:head_len].split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    kept = []
    removed = False
    for f in fields:
        name, colon, value = f.partition(b":")
        is_ar = colon and name.strip().lower() == b"authentication-results"
        if is_ar and _authserv_id(value).rstrip(".") == ours:
            removed = True
            continue
        kept.append(f)
    if not removed:
        return message
    return b"".join(f + b"\r\n" for f in kept) + message[head_len:]
