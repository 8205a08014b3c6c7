"""The one exception a sans-IO protocol core raises on bad input."""

from __future__ import annotations


class ProtocolError(Exception):
    """Malformed or out-of-place input; ``reply`` is the exact bytes to send back.

    ``fatal`` says the connection must be closed after the reply (the RFC gives no way to go on,
    or the error budget is spent). Any other exception escaping a core is a bug in the core.
    """

    def __init__(self, reply: bytes, *, fatal: bool = False) -> None:
        super().__init__(reply.decode("utf-8", "replace").rstrip("\r\n"))
        self.reply = reply
        self.fatal = fatal
