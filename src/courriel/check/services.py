"""Where each mail service is, and opening a checked session to it: connect, TLS, login.

Theory of operation
-------------------
A ``Target`` is one service at one host and port, with where that came from (autoconfig, SRV,
``--server``...). ``Session.open`` runs and reports the steps a mail program goes through:

1. **connect** -- the TCP connect, timed;
2. on a STARTTLS port, **no password before TLS** -- STARTTLS must be offered, and passwords
   must be refused until it is done (``protocols.Speaker.refuses_plain_passwords``);
3. **TLS** -- implicit or STARTTLS, timed, with version and certificate. A certificate a mail
   program would refuse fails the step; with ``insecure`` the check connects once more without
   verifying and goes on, and the step is a warning with the same explanation;
4. **login** (``Session.login``) -- timed; a refusal is explained from the server's reply.

Each step's failure ends the session (``None``); the steps already run stay in the report.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from courriel.check import explain
from courriel.check.lookup import Lookup
from courriel.check.protocols import (
    Imap,
    LoginRefusedError,
    Pop3,
    Smtp,
    Speaker,
    UnexpectedReplyError,
)
from courriel.check.report import Report
from courriel.check.tls import (
    CertificateRefusedError,
    ConnectError,
    TlsResult,
    client_context,
    later_problem,
    open_connection,
    start_tls,
    start_tls_unverified,
    tls_result,
)

# service -> (protocol, standard port, implicit TLS), as courriel.config.LISTENERS names them
SERVICES: dict[str, tuple[str, int, bool]] = {
    "imaps": ("imap", 993, True),
    "imap": ("imap", 143, False),
    "pop3s": ("pop3", 995, True),
    "pop3": ("pop3", 110, False),
    "submissions": ("smtp", 465, True),
    "submission": ("smtp", 587, False),
    "smtp": ("smtp", 25, False),  # the domain's MX: no login
}
SPEAKERS: dict[str, Speaker] = {"imap": Imap(), "pop3": Pop3(), "smtp": Smtp()}
_PROTOCOL_ERRORS = (
    imaplib.IMAP4.error,
    poplib.error_proto,
    smtplib.SMTPException,
    UnexpectedReplyError,
)


@dataclass(frozen=True, slots=True)
class Target:
    service: str
    host: str
    port: int
    source: str  # where the check learnt of it
    required: bool = True  # announced or named: a refused connection is a failure

    @property
    def protocol(self) -> str:
        return SERVICES[self.service][0]

    @property
    def implicit_tls(self) -> bool:
        return SERVICES[self.service][2]

    @property
    def section(self) -> str:
        name = "SMTP MX" if self.service == "smtp" else SERVICES[self.service][0].upper()
        return f"{name} {self.host}:{self.port} ({self.service})"


@dataclass
class Context:
    report: Report
    lookup: Lookup
    cafile: Path | None
    insecure: bool
    timeout: float


@dataclass
class Opened:
    target: Target
    client: Any
    tls: TlsResult


class Session:
    """Opens checked sessions to ``target``; each call reports its steps."""

    def __init__(self, ctx: Context, target: Target) -> None:
        self.ctx = ctx
        self.target = target
        self.speaker = SPEAKERS[target.protocol]

    def open(self, *, quiet: bool = False) -> Opened | None:
        """Connect, check the plain-text phase, start TLS. ``quiet`` reports failures only
        (for the second and later sessions of the round trip)."""
        t, report = self.target, self.ctx.report
        report.begin(t.section, "connect")
        try:
            sock, seconds = open_connection(self.ctx.lookup, t.host, t.port, self.ctx.timeout)
        except ConnectError as e:
            why = e.explanation
            if t.service == "smtp" and why is explain.TIMED_OUT:
                why = explain.PORT25_TIMED_OUT  # whatever port a test gave, it stands for 25
            if not t.required and why is explain.REFUSED:
                report.skip(t.section, "connect", f"not offered ({e.detail})")
            else:
                report.fail(t.section, "connect", why, e.detail, e.seconds)
            return None
        if not quiet:
            report.ok(t.section, "connect", f"{t.host}:{t.port} answered", seconds)
        try:
            return self._secure(sock, None, quiet=quiet)
        except CertificateRefusedError as e:
            if not (self.ctx.insecure or t.service == "smtp"):
                report.fail(t.section, "TLS", e.explanation, e.detail, e.seconds)
                return None
            # A failed handshake leaves nothing to go on with: connect again, unverified.
            try:
                sock, _ = open_connection(self.ctx.lookup, t.host, t.port, self.ctx.timeout)
                return self._secure(sock, e, quiet=quiet)
            except ConnectError as again:
                report.fail(t.section, "TLS", again.explanation, again.detail, again.seconds)
                return None
        except ConnectError as e:
            report.fail(t.section, "TLS", e.explanation, e.detail, e.seconds)
            return None

    def _secure(
        self, sock: socket.socket, accepted: CertificateRefusedError | None, *, quiet: bool
    ) -> Opened | None:
        t, report = self.target, self.ctx.report
        try:
            if t.implicit_tls:
                if accepted is None:
                    tls, result = start_tls(sock, t.host, self.ctx.cafile)
                else:
                    tls, result = start_tls_unverified(sock, t.host, accepted.explanation)
                client = self.speaker.open(tls, t.host, t.port)
            else:
                client = self.speaker.open(sock, t.host, t.port)
                if not self._plain_phase(client, quiet=quiet or accepted is not None):
                    return None
                result = self._starttls(client, accepted)
        except _PROTOCOL_ERRORS as e:
            report.fail(t.section, "greeting", explain.PROTOCOL_ERROR, str(e))
            sock.close()
            return None
        except (TimeoutError, OSError, EOFError) as e:
            report.fail(t.section, "greeting", explain.from_os_error(e, t.port), str(e))
            sock.close()
            return None
        if quiet:  # the first session reported the TLS step, warnings included
            return Opened(t, client, result)
        problem = result.problem or later_problem(result)
        if problem is None:
            report.ok(t.section, "TLS", _tls_detail(result), result.seconds)
        else:
            detail = _tls_detail(result)
            if accepted is not None:
                detail += f"; accepted with --insecure: {accepted.detail}"
            report.warn(t.section, "TLS", problem, detail, result.seconds)
        return Opened(t, client, result)

    def _plain_phase(self, client: Any, *, quiet: bool) -> bool:
        t, report = self.target, self.ctx.report
        if not self.speaker.offers_starttls(client):
            report.fail(t.section, "STARTTLS", explain.NO_STARTTLS, "STARTTLS is not offered")
            self.speaker.close(client)
            return False
        if t.service == "smtp":
            return True  # port 25 takes no passwords at all
        refused, seen = self.speaker.refuses_plain_passwords(client)
        if not refused:
            report.fail(t.section, "no password before TLS", explain.PLAINTEXT_LOGIN, seen)
            self.speaker.close(client)
            return False
        if not quiet:
            report.ok(t.section, "no password before TLS", seen)
        return True

    def _starttls(self, client: Any, accepted: CertificateRefusedError | None) -> TlsResult:
        start = time.monotonic()
        host = self.target.host
        context = client_context(self.ctx.cafile, verify=accepted is None)
        try:
            tls = self.speaker.upgrade(client, context)
        except ssl.SSLCertVerificationError as e:
            why = explain.from_certificate_error(e)
            raise CertificateRefusedError(
                why, f"{host}: {e.verify_message}", time.monotonic() - start
            ) from None
        except ssl.SSLError as e:
            raise ConnectError(
                explain.TLS_FAILED, f"{host}: TLS: {e}", time.monotonic() - start
            ) from None
        problem = None if accepted is None else accepted.explanation
        return tls_result(tls, problem, time.monotonic() - start)

    def login(self, opened: Opened, user: str, password: str, *, quiet: bool = False) -> bool:
        t, report = self.target, self.ctx.report
        report.begin(t.section, "login")
        start = time.monotonic()
        try:
            self.speaker.login(opened.client, user, password)
        except LoginRefusedError as e:
            why = explain.from_login_reply(e.reply)
            report.fail(t.section, "login", why, f"{user}: {e.reply}", time.monotonic() - start)
            self.speaker.close(opened.client)
            return False
        except (TimeoutError, OSError, EOFError, *_PROTOCOL_ERRORS) as e:
            report.fail(t.section, "login", explain.CLOSED_EARLY, str(e), time.monotonic() - start)
            return False
        if not quiet:
            report.ok(t.section, "login", f"logged in as {user}", time.monotonic() - start)
        return True

    def close(self, opened: Opened) -> None:
        self.speaker.close(opened.client)


def _tls_detail(result: TlsResult) -> str:
    cert = result.certificate.summary() if result.certificate else "no certificate"
    return f"{result.version}, {cert}"
