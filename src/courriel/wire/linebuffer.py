"""A receive buffer for line-based protocols, read in bulk.

Theory of operation
-------------------
A protocol core appends whatever the network delivered (``feed``) and takes out complete units:
a line (``readline``), an exact number of octets (``take``: SMTP BDAT, IMAP literals), or
everything up to a terminator it located itself with ``find``/``rfind`` (SMTP DATA). Every
operation is one C-level call on a ``bytearray`` (``find``, slicing, ``del`` of a prefix, which
CPython does in O(1) for a bytearray); nothing here loops over lines or octets in Python, so
the cost of a 64 KB message is a handful of calls, not thousands.

Invariants:

* Bytes come out exactly once and in the order they went in; nothing is dropped except by
  ``skip``/``clear`` which say how much they dropped.
* ``readline(limit)`` never scans or returns more than ``limit`` octets: a line that has no LF
  within ``limit`` octets raises ``LineTooLong`` and stays in the buffer, so the caller decides
  whether to discard it (``discard_line``) or fail. This keeps a core's memory bounded by its
  own limits whatever the peer sends.
* Line ends are found at LF. Whether a bare LF (no CR before it) is acceptable is the
  protocol's decision; ``readline`` returns the line with its terminator so the caller can see.
"""

from __future__ import annotations


class LineTooLong(Exception):  # noqa: N818 - reads as "linebuffer.LineTooLong"
    """No line end within the limit given to ``readline``."""


class LineBuffer:
    """Octets received and not yet consumed."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def __bool__(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def readline(self, limit: int) -> bytes | None:
        """The next line including its LF, ``None`` if none is complete yet.

        Raises ``LineTooLong`` when the first ``limit`` octets hold no LF.
        """
        end = self._buf.find(b"\n", 0, limit)
        if end < 0:
            if len(self._buf) >= limit:
                raise LineTooLong
            return None
        return self.take(end + 1)

    def discard_line(self) -> bool:
        """Drops octets through the next LF; ``True`` if an LF was found.

        Without an LF everything buffered is dropped (it is all part of the line being
        discarded), so a peer sending an endless line costs no memory.
        """
        end = self._buf.find(b"\n")
        if end < 0:
            self._buf.clear()
            return False
        del self._buf[: end + 1]
        return True

    def take(self, n: int) -> bytes:
        """Removes and returns the first ``n`` octets (fewer if fewer are buffered)."""
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def skip(self, n: int) -> int:
        """Drops the first ``n`` octets; returns how many were dropped."""
        n = min(n, len(self._buf))
        del self._buf[:n]
        return n

    def clear(self) -> int:
        """Drops everything; returns how many octets were dropped."""
        n = len(self._buf)
        self._buf.clear()
        return n

    def find(self, needle: bytes, start: int = 0, end: int | None = None) -> int:
        """Index of ``needle`` in the buffered octets, or -1 (``bytes.find`` semantics)."""
        if end is None:
            return self._buf.find(needle, start)
        return self._buf.find(needle, start, end)

    def rfind(self, needle: bytes, start: int = 0) -> int:
        return self._buf.rfind(needle, start)

    def startswith(self, prefix: bytes) -> bool:
        return self._buf.startswith(prefix)
