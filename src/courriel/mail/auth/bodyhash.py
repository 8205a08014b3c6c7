"""DKIM body canonicalization and hash (RFC 6376 §3.4.3, §3.4.4, §3.7), in bounded pieces.

Theory of operation
-------------------
A body is canonicalized and hashed in pieces of about ``CHUNK`` octets cut after a CRLF, so no
single regular-expression call holds the interpreter for long (a thread doing this for a 50 MB
message lets the event loop run between pieces), and the message is never copied whole.

* relaxed (§3.4.4): runs of SP/HTAB become one SP, SP/HTAB before a line end disappear;
* both: empty lines at the end are ignored -- a piece ending in empty lines holds them back
  (``pending``) until a non-empty line follows, and drops them if none does; a body that does
  not end in CRLF gets one; an empty body is "" (relaxed) or one CRLF (simple);
* ``length`` (the ``l=`` tag) limits the hashed octets of the canonical body.

Pieces never split a line, so a whitespace run or a CRLF never straddles two pieces.
``body_hash`` is shared by every signature of a message that uses the same canonicalization,
hash and length: a message carrying ten signatures has its body hashed once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

CHUNK = 64 * 1024
# Only the runs that change: a lone SP (most of any text) is left alone, which makes relaxed
# canonicalization several times faster than matching every run.
_WSP_RUN = re.compile(rb"\t[ \t]*| [ \t]+")
_WSP_EOL = re.compile(rb" \r\n")


def _trailing_crlfs(piece: bytes) -> int:
    n, end = 0, len(piece)
    while end >= 2 and piece[end - 2 : end] == b"\r\n":
        n, end = n + 1, end - 2
    return n


def canonical_pieces(
    body: bytes, relaxed: bool, chunk: int = CHUNK, start: int = 0
) -> Iterator[bytes]:
    """The canonical form of ``body[start:]``, in pieces (the body is not copied whole)."""
    pending = 0  # empty lines held back
    emitted = False
    pos, size = start, len(body)
    while pos < size:
        cut = body.find(b"\r\n", min(pos + chunk, size) - 1)
        end = size if cut < 0 else cut + 2
        piece = body[pos:end]
        pos = end
        if relaxed:  # RFC 6376 §3.4.4
            # A last line without CRLF keeps its trailing space, as in dkimpy (it
            # cannot arrive over SMTP, whose DATA always ends lines with CRLF).
            piece = _WSP_EOL.sub(b"\r\n", _WSP_RUN.sub(b" ", piece))
        n = _trailing_crlfs(piece)
        content = piece[: len(piece) - 2 * n]
        if not content:  # only empty lines: keep them back
            pending += n
            continue
        yield b"\r\n" * pending + content + b"\r\n"  # a missing final CRLF is added
        emitted = True
        pending = max(n - 1, 0)
    if not emitted and not relaxed:
        yield b"\r\n"  # RFC 6376 §3.4.3: an empty body is one CRLF


def body_hash(
    body: bytes,
    relaxed: bool,
    algorithm: str = "sha256",
    length: int | None = None,
    start: int = 0,
) -> bytes:
    """The digest of the canonical ``body[start:]`` (``bh=``), over at most ``length`` octets."""
    h = hashlib.new(algorithm)
    left = length
    for piece in canonical_pieces(body, relaxed, start=start):
        if left is not None:
            piece = piece[:left]
            left -= len(piece)
        h.update(piece)
        if left == 0:
            break
    return h.digest()
