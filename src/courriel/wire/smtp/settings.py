"""What one SMTP listener offers and allows: the ``SmtpConfig`` an ``SmtpConnection`` is built with.

The net layer builds one per listener from ``courriel.config`` (hostname, ``limits``, the
listener's ``implicit_tls``, whether a certificate is loaded) so that this package stays free of
the configuration file and its imports.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Mode(enum.Enum):
    MX = "mx"  # port 25: mail from other servers to our users
    SUBMISSION = "submission"  # ports 587 and 465: our users sending (RFC 6409)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    hostname: str
    mode: Mode = Mode.MX
    tls_active: bool = False  # implicit TLS (port 465, RFC 8314 §3.3)
    tls_available: bool = False  # a certificate is loaded, so STARTTLS can be offered
    auth_mechanisms: tuple[str, ...] = ()  # upper case; () offers no AUTH
    auth_requires_tls: bool = True  # offer AUTH only under TLS (RFC 4954 §4, RFC 8314 §3)
    # Also announce "AUTH=PLAIN LOGIN", the pre-RFC 2554 form some old Outlook versions read
    # (Postfix's broken_sasl_auth_clients).
    legacy_auth_line: bool = False
    max_line: int = 1000  # command line, CRLF included (RFC 5321 §4.5.3.1.4)
    max_auth_line: int = 12288  # AUTH command and SASL responses (RFC 4954 §4)
    max_message_bytes: int = 50 * 1024 * 1024  # announced in SIZE (RFC 1870)
    max_recipients: int = 100  # per transaction (RFC 5321 §4.5.3.1.8 requires at least 100)
    max_errors: int = 20  # 4xx/5xx replies before 421 and close (Postfix: hard_error_limit)
    # NOOP, RSET, VRFY and HELP without mail delivered; past it each one counts as an error
    # (Postfix: smtpd_junk_command_limit), so a flood of them ends with 421 after max_errors.
    max_junk_commands: int = 100
    smtputf8: bool = True  # RFC 6531
    chunking: bool = True  # CHUNKING and BINARYMIME (RFC 3030)
    burl: bool = False  # BURL imap (RFC 4468), on submission: needs CHUNKING
    dsn: bool = True  # RFC 3461 parameters
    strict_lines: bool = False  # refuse messages with lines over 998 characters

    def __post_init__(self) -> None:
        if self.max_line < 512:
            raise ValueError("max_line below the 512 octets RFC 5321 §4.5.3.1.4 requires")
        if self.max_auth_line < self.max_line:
            raise ValueError("max_auth_line must be at least max_line")
        if self.max_message_bytes < 1 or self.max_recipients < 1 or self.max_errors < 1:
            raise ValueError("limits must be positive")
        if any(m != m.upper() for m in self.auth_mechanisms):
            raise ValueError("AUTH mechanism names are upper case")
