"""Connecting, timed, and what the TLS handshake shows: version, certificate, and its verdict.

Theory of operation
-------------------
``open_connection`` resolves the host with the check's ``Lookup`` and connects to the first
address that answers, timing the TCP connect; the TLS handshake (``start_tls``) is timed on its
own, with the host *name* for SNI and name checking, whatever address was used.

The handshake is first tried as a mail program does it: the system's trusted authorities (plus
``--cafile``), the name checked. When that fails on the certificate, OpenSSL's verify code says
why (``explain.from_certificate_error``); with ``insecure`` the check connects again without
verification -- so it can go on and still report the problem as a warning -- and reads the
certificate anyway, for its names and expiry date.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from courriel.check import explain
from courriel.check.explain import Explanation
from courriel.check.lookup import DnsLookupError, Lookup

EXPIRY_WARNING = dt.timedelta(days=14)


class ConnectError(Exception):
    def __init__(self, explanation: Explanation, detail: str, seconds: float) -> None:
        super().__init__(detail)
        self.explanation = explanation
        self.detail = detail
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class Certificate:
    subject: str
    names: tuple[str, ...]
    issuer: str
    not_after: dt.datetime
    self_signed: bool

    def summary(self) -> str:
        kind = "self-signed" if self.self_signed else f"issued by {self.issuer}"
        return (
            f"certificate for {', '.join(self.names) or self.subject}, {kind}, "
            f"expires {self.not_after:%Y-%m-%d}"
        )


@dataclass(frozen=True, slots=True)
class TlsResult:
    version: str
    certificate: Certificate | None
    problem: Explanation | None  # the verification failure accepted with --insecure
    seconds: float


def parse_certificate(der: bytes) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(str(n.value) for n in san.value)
    except x509.ExtensionNotFound:
        names = ()
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        names=names,
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
        self_signed=cert.issuer == cert.subject,
    )


def client_context(cafile: Path | None, *, verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if cafile is not None:
        ctx.load_verify_locations(cafile=str(cafile))
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def open_connection(
    lookup: Lookup, host: str, port: int, timeout: float
) -> tuple[socket.socket, float]:
    """A connected socket and the seconds the connect took; raises ``ConnectError``."""
    start = time.monotonic()
    try:
        addresses = lookup.addresses(host)
    except DnsLookupError as e:
        raise ConnectError(explain.NO_ADDRESS, str(e), time.monotonic() - start) from None
    if not addresses:
        raise ConnectError(explain.NO_ADDRESS, f"{host} has no A or AAAA record", 0.0)
    error: BaseException | None = None
    for address in addresses:
        start = time.monotonic()
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as e:
            error = e
            continue
        return sock, time.monotonic() - start
    assert error is not None
    detail = f"{host}:{port}: {_describe(error)}"
    raise ConnectError(explain.from_os_error(error, port), detail, time.monotonic() - start)


def _describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def start_tls(
    sock: socket.socket, host: str, cafile: Path | None
) -> tuple[ssl.SSLSocket, TlsResult]:
    """Wraps ``sock`` (consumed either way); raises ``ConnectError`` unless it can go on.

    With a certificate problem and ``insecure``, the caller must connect again and call
    ``start_tls_unverified`` (a failed handshake leaves the connection unusable).
    """
    start = time.monotonic()
    try:
        tls = client_context(cafile, verify=True).wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as e:
        sock.close()
        why = explain.from_certificate_error(e)
        raise CertificateRefusedError(
            why, f"{host}: {e.verify_message}", time.monotonic() - start
        ) from None
    except (ssl.SSLError, OSError) as e:
        sock.close()
        raise ConnectError(
            explain.from_os_error(e, 0), f"{host}: TLS: {_describe(e)}", time.monotonic() - start
        ) from None
    return tls, tls_result(tls, None, time.monotonic() - start)


class CertificateRefusedError(ConnectError):
    """The handshake failed on the certificate; ``explanation`` says why."""


def start_tls_unverified(
    sock: socket.socket, host: str, problem: Explanation
) -> tuple[ssl.SSLSocket, TlsResult]:
    start = time.monotonic()
    try:
        tls = client_context(None, verify=False).wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, OSError) as e:
        sock.close()
        raise ConnectError(
            explain.TLS_FAILED, f"{host}: TLS: {_describe(e)}", time.monotonic() - start
        ) from None
    return tls, tls_result(tls, problem, time.monotonic() - start)


def tls_result(tls: ssl.SSLSocket, problem: Explanation | None, seconds: float) -> TlsResult:
    der = tls.getpeercert(binary_form=True)
    cert = parse_certificate(der) if der else None
    return TlsResult(tls.version() or "unknown", cert, problem, seconds)


def later_problem(result: TlsResult, now: dt.datetime | None = None) -> Explanation | None:
    """A warning for a certificate that verified: an old TLS version, or expiry soon."""
    if result.version in ("SSLv3", "TLSv1", "TLSv1.1"):
        return explain.TLS_OLD_VERSION  # RFC 8996
    now = now or dt.datetime.now(dt.UTC)
    if result.certificate is not None and result.certificate.not_after - now < EXPIRY_WARNING:
        return explain.TLS_EXPIRES_SOON
    return None
