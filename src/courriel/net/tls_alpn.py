"""TLS-ALPN-01 (RFC 8737): the challenge certificate, and choosing it during the handshake.

Theory of operation
-------------------
An ACME server validating a name with TLS-ALPN-01 connects to port 443 with that name in SNI and
``acme-tls/1`` as its only ALPN protocol; the server must answer with a self-signed certificate
for the name carrying the SHA-256 of the key authorization in a critical ``acmeIdentifier``
extension, and select ``acme-tls/1`` (RFC 8737 §3). Every other client must keep getting the
real certificate, so the choice needs both the SNI name and the client's ALPN list.

Python's ``ssl`` gives the SNI name to ``sni_callback`` (which may switch the connection to
another context) but no ALPN list and no ALPN selection callback. The ClientHello is seen
whole, though, by the context's message callback, which OpenSSL calls when the message is read,
before it processes the SNI extension. ``Challenges.attach`` installs both callbacks: the
message callback notes the connections whose ClientHello offers ``acme-tls/1``; the SNI
callback switches exactly those, when a challenge for their name is pending, to a context
holding the challenge certificate with ``acme-tls/1`` as its only protocol. The callbacks are
attached only while challenges are pending, so ordinary handshakes pay nothing otherwise.
``ssl.SSLContext._msg_callback`` is CPython's, undocumented but present since 3.8; without it
the challenge is never chosen and TLS-ALPN-01 fails with a logged reason (HTTP-01 still works).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

log = logging.getLogger("courriel.tls")

ALPN_PROTOCOL = "acme-tls/1"  # RFC 8737 §6.2
ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # id-pe-acmeIdentifier, RFC 8737 §6.1
_EXT_ALPN = 16  # RFC 7301 §3.1
_CLIENT_HELLO = 1
_MAX_NOTED = 256  # connections whose handshake is in flight; bounds a flood of hellos


def offered_alpn(hello: bytes) -> list[bytes]:
    """The ALPN protocols a TLS ClientHello handshake message offers; [] when none or malformed."""
    try:
        if hello[0] != _CLIENT_HELLO:
            return []
        pos = 4 + 2 + 32  # type and length, legacy_version, random
        pos += 1 + hello[pos]  # legacy_session_id
        pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher_suites
        pos += 1 + hello[pos]  # legacy_compression_methods
        end = pos + 2 + int.from_bytes(hello[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= min(end, len(hello)):
            kind = int.from_bytes(hello[pos : pos + 2], "big")
            size = int.from_bytes(hello[pos + 2 : pos + 4], "big")
            body = hello[pos + 4 : pos + 4 + size]
            pos += 4 + size
            if kind == _EXT_ALPN:
                names, i = [], 2
                while i < len(body):
                    n = body[i]
                    names.append(body[i + 1 : i + 1 + n])
                    i += 1 + n
                return names
    except IndexError:
        return []
    return []


def challenge_certificate(name: str, key_authorization: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) answering TLS-ALPN-01 for ``name`` (RFC 8737 §3)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64])])
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        # RFC 8737 §3: the extension is critical and holds the DER OCTET STRING of the digest.
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def context_from_pem(cert_pem: bytes, key_pem: bytes, directory: Path) -> ssl.SSLContext:
    """A server context from PEM bytes, read through a private file removed at once."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_pem(ctx, cert_pem, key_pem, directory)
    return ctx


def load_pem(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, directory: Path) -> None:
    """``load_cert_chain`` from bytes: OpenSSL reads files only, so one is made for the moment."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=directory, prefix=".load-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem + b"\n" + cert_pem)
        ctx.load_cert_chain(name)
    finally:
        Path(name).unlink()


class Challenges:
    """The pending TLS-ALPN-01 challenges of this process, and the callbacks that answer them."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory  # where the momentary key files are made
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._authorizations: dict[str, str] = {}
        self._offered: dict[int, bool] = {}  # id(SSLObject) -> offered acme-tls/1

    def __bool__(self) -> bool:
        return bool(self._contexts)

    def update(self, pending: Mapping[str, str]) -> None:
        """Makes the challenge contexts for ``pending`` (name -> key authorization)."""
        for name in list(self._contexts):
            if name not in pending:
                del self._contexts[name], self._authorizations[name]
        for name, authorization in pending.items():
            if self._authorizations.get(name) == authorization:
                continue
            cert_pem, key_pem = challenge_certificate(name, authorization)
            ctx = context_from_pem(cert_pem, key_pem, self._directory)
            ctx.set_alpn_protocols([ALPN_PROTOCOL])
            self._contexts[name], self._authorizations[name] = ctx, authorization
            log.info("answering TLS-ALPN-01 for %s", name)
        if not self._contexts:
            self._offered.clear()

    def attach(self, ctx: ssl.SSLContext) -> None:
        """Installs the callbacks on ``ctx`` while challenges are pending, removes them else."""
        if self._contexts:
            ctx.sni_callback = self._sni
            ctx._msg_callback = self._message  # type: ignore[attr-defined]
        else:
            ctx.sni_callback = None
            ctx._msg_callback = None  # type: ignore[attr-defined]

    def _message(self, conn: Any, direction: str, _v: Any, _c: Any, kind: Any, data: bytes) -> None:
        if direction != "read" or kind != _CLIENT_HELLO:
            return
        if len(self._offered) >= _MAX_NOTED:
            self._offered.clear()  # hellos that never reached SNI; a real challenge retries
        # Every hello overwrites what its connection's id held, so an id reused after a
        # connection that never reached the SNI callback cannot inherit its answer.
        self._offered[id(conn)] = ALPN_PROTOCOL.encode() in offered_alpn(data)

    def _sni(self, conn: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
        offered = self._offered.pop(id(conn), False)
        challenge = self._contexts.get((name or "").lower())
        if offered and challenge is not None:
            conn.context = challenge  # RFC 8737 §3: only for acme-tls/1 with this SNI name
