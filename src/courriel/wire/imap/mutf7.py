"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3), for IMAP4rev1 clients.

Theory of operation
-------------------
Printable US-ASCII other than ``&`` stands for itself; ``&-`` is ``&``; anything else is a run
``&`` + modified BASE64 (``,`` instead of ``/``, no padding) of the UTF-16BE text + ``-``.
Decoding is strict, as the RFC asks of the encoding: a run that encodes printable ASCII, two
adjacent runs, bad padding bits or a lone surrogate make the name invalid, so one name has
exactly one spelling. Clients that enabled IMAP4rev2 or UTF8=ACCEPT send and receive raw UTF-8
instead and never come through here.
"""

from __future__ import annotations

import base64
import binascii


class MUTF7Error(ValueError):
    """Not valid modified UTF-7."""


def _is_direct(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def encode(name: str) -> bytes:
    out: list[bytes] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            utf16 = "".join(run).encode("utf-16-be", "surrogatepass")
            b64 = base64.b64encode(utf16).rstrip(b"=").replace(b"/", b",")
            out.append(b"&" + b64 + b"-")
            run.clear()

    for ch in name:
        if _is_direct(ch):
            flush()
            out.append(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            run.append(ch)
    flush()
    return b"".join(out)


def _decode_run(b64: bytes) -> str:
    if not b64:
        raise MUTF7Error("empty shifted run (use &- for &)")
    pad = -len(b64) % 4
    if pad == 3:
        raise MUTF7Error("truncated base64 in shifted run")
    try:
        raw = base64.b64decode(b64.replace(b",", b"/") + b"=" * pad, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MUTF7Error("bad base64 in shifted run") from e
    if len(raw) % 2:
        raise MUTF7Error("odd number of UTF-16 bytes in shifted run")
    # RFC 3501 §5.1.3: the bits left over must be zero, so each text has one encoding
    if base64.b64encode(raw).rstrip(b"=").replace(b"/", b",") != b64:
        raise MUTF7Error("non-zero padding bits in shifted run")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as e:
        raise MUTF7Error("unpaired surrogate in shifted run") from e
    if any(_is_direct(ch) for ch in text):
        raise MUTF7Error("printable ASCII must not be base64-encoded")
    return text


def decode(data: bytes) -> str:
    """The mailbox name that ``data`` encodes; raises ``MUTF7Error`` if it is not canonical."""
    out: list[str] = []
    i, n = 0, len(data)
    after_run = False
    while i < n:
        amp = data.find(b"&", i)
        if amp < 0:
            amp = n
        if amp > i:
            chunk = data[i:amp]
            if any(c < 0x20 or c > 0x7E for c in chunk):
                raise MUTF7Error("mailbox name has bytes outside printable US-ASCII")
            out.append(chunk.decode("ascii"))
            after_run = False
        if amp == n:
            break
        end = data.find(b"-", amp + 1)
        if end < 0:
            raise MUTF7Error("shifted run is not closed with -")
        if end == amp + 1:
            out.append("&")
            after_run = False
        else:
            if after_run:
                # RFC 3501 §5.1.3: two runs back to back must be written as one
                raise MUTF7Error("adjacent shifted runs")
            out.append(_decode_run(data[amp + 1 : end]))
            after_run = True
        i = end + 1
    return "".join(out)
