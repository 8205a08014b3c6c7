"""The errors of the Sieve language: one for scripts that cannot be compiled, one for runs."""

from __future__ import annotations


class SieveError(Exception):
    """A script that cannot be accepted; the message names the line and says why in words."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.reason = message


class LimitExceeded(SieveError):  # noqa: N818 - reads as sieve.LimitExceeded
    """A script (or one run of it) passed one of the limits in ``courriel.sieve.limits``."""


class RuntimeSieveError(Exception):
    """A run failed (RFC 5228 §2.10.6): the caller keeps the message (implicit keep)."""
