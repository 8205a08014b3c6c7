"""Server TLS: the certificate, the SSLContext built from it, and reloading it without restarts.

Theory of operation
-------------------
``TLSManager`` owns the ``ssl.SSLContext`` that every listener uses for implicit TLS and STARTTLS.
Listeners ask for ``manager.context`` at the moment a connection starts TLS, so replacing the
context changes only connections that start TLS afterwards; an established TLS session keeps the
context it was made with. That is how SIGHUP reloads a renewed certificate without dropping a
single connection. A reload that fails (missing file, key that does not match) keeps the old
context and logs why: a broken renewal must never take the server down.

Certificates come from ACME when ``install`` gave one (``courriel.web.acme`` keeps it in the store
and hands it to every process; it is held in memory, so SIGHUP rebuilds from it), else from
``[tls] cert``/``key``. When both are empty, courriel makes a self-signed
certificate on first run in ``<data_dir>/tls/{cert,key}.pem`` (ECDSA P-256, names: the hostname,
localhost, 127.0.0.1 and ::1) and reuses it afterwards, so the fingerprint a person accepted once
in their mail program stays the same. The key is written with mode 0600 before any byte of it
exists on disk, then renamed into place, so a crash never leaves half a key.

Protocol policy: TLS 1.2 at least (RFC 8996 deprecates 1.0 and 1.1; RFC 8314 §4.1 asks mail
services for current TLS), forward-secret AEAD suites only for TLS 1.2, no compression (CRIME),
no renegotiation, the server's suite order.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from courriel.config import Config
from courriel.logs import kv
from courriel.net.tls_alpn import Challenges, load_pem

log = logging.getLogger("courriel.tls")

# TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers only, the "intermediate"
# profile that every mail client of the last decade speaks. TLS 1.3 suites are OpenSSL's defaults.
TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
SELF_SIGNED_DAYS = 3650
SELF_SIGNED_ORGANIZATION = "courriel self-signed"


class TLSError(Exception):
    """The certificate or key cannot be used; the message names the file and the reason."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What a person needs to recognise the certificate their mail program shows them."""

    cert_path: Path
    key_path: Path
    subject: str
    names: tuple[str, ...]
    not_after: dt.datetime
    sha256: str  # colon-separated upper-case hex, as mail programs display it
    self_signed: bool
    serial: str = ""  # hexadecimal, lower case
    source: str = ""  # where it came from when not a file ("ACME, kept in the store")


def _policy_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996: no TLS 1.0 or 1.1
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_SINGLE_ECDH_USE
    return ctx


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server context for the given PEM files; raises ``TLSError`` naming what is wrong."""
    ctx = _policy_context()
    for path in (cert_path, key_path):
        # OpenSSL's errors do not say which file is missing; a person needs to know.
        if not path.is_file():
            raise TLSError(f"{path}: no such file")
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except PermissionError as e:
        raise TLSError(f"{cert_path} / {key_path}: permission denied") from e
    except ssl.SSLError as e:
        raise TLSError(f"{cert_path} / {key_path}: unusable certificate or key: {e}") from e
    except OSError as e:
        raise TLSError(f"{cert_path} / {key_path}: cannot read: {e}") from e
    return ctx


def certificate_info(cert_path: Path, key_path: Path) -> CertificateInfo:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as e:
        raise TLSError(f"{cert_path}: not a PEM certificate: {e}") from e
    return _info(cert, cert_path, key_path)


def _info(
    cert: x509.Certificate, cert_path: Path, key_path: Path, source: str = ""
) -> CertificateInfo:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(n.value) for n in san)
    except x509.ExtensionNotFound:
        names = ()
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return CertificateInfo(
        cert_path=cert_path,
        key_path=key_path,
        subject=cert.subject.rfc4514_string(),
        names=names,
        not_after=cert.not_valid_after_utc,
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        self_signed=bool(orgs) and orgs[0].value == SELF_SIGNED_ORGANIZATION,
        serial=format(cert.serial_number, "x"),
        source=source,
    )


def pem_context(
    cert_pem: bytes, key_pem: bytes, scratch: Path
) -> tuple[ssl.SSLContext, CertificateInfo]:
    """A server context and its description from PEM bytes (an ACME certificate)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise TLSError(f"the ACME certificate is not PEM: {e}") from e
    ctx = _policy_context()
    try:
        load_pem(ctx, cert_pem, key_pem, scratch)
    except (ssl.SSLError, OSError) as e:
        raise TLSError(f"the ACME certificate or its key is unusable: {e}") from e
    return ctx, _info(cert, scratch, scratch, source="ACME, kept in the store")


def _san_entries(hostname: str) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in (hostname, "localhost", "127.0.0.1", "::1"):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        try:
            a_label = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            a_label = name.encode("ascii", "replace").decode("ascii")
        entry = x509.DNSName(a_label)
        if entry not in entries:
            entries.append(entry)
    return entries


def make_self_signed(hostname: str) -> tuple[bytes, bytes]:
    """A new (certificate PEM, private key PEM) pair valid for ``hostname`` and loopback."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_SIGNED_ORGANIZATION),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))  # tolerate clients with a slow clock
        .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san_entries(hostname)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # The mode is set at creation: a private key is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits we asked for; restore exactly
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def ensure_self_signed(data_dir: Path, hostname: str) -> tuple[Path, Path]:
    """``<data_dir>/tls/{cert,key}.pem``, made on first use and kept afterwards."""
    directory = data_dir / "tls"
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_pem, key_pem = make_self_signed(hostname)
    # Key first: a certificate without its key would be reused and fail on every start.
    _write_atomic(key_path, key_pem, 0o600)
    _write_atomic(cert_path, cert_pem, 0o644)
    log.info("made a self-signed certificate for %s in %s", hostname, directory)
    return cert_path, key_path


class TLSManager:
    """The current server context, replaced as a whole on ``reload``."""

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._context: ssl.SSLContext | None = None
        self._info: CertificateInfo | None = None
        self._acme: tuple[bytes, bytes] | None = None  # (chain PEM, key PEM) from ``install``
        self.challenges = Challenges(cfg.data_dir / "tls")  # TLS-ALPN-01, RFC 8737

    def _paths(self) -> tuple[Path, Path]:
        if self._cfg.tls.cert:
            return self._cfg.resolve(self._cfg.tls.cert), self._cfg.resolve(self._cfg.tls.key)
        return ensure_self_signed(self._cfg.data_dir, self._cfg.hostname)

    def _build(self) -> tuple[ssl.SSLContext, CertificateInfo]:
        if self._acme is not None:
            ctx, info = pem_context(*self._acme, self._cfg.data_dir / "tls")
            self.challenges.attach(ctx)
            return ctx, info
        try:
            cert_path, key_path = self._paths()
        except OSError as e:
            raise TLSError(f"cannot make the self-signed certificate: {e}") from e
        ctx = server_context(cert_path, key_path)
        self.challenges.attach(ctx)
        return ctx, certificate_info(cert_path, key_path)

    def load(self) -> CertificateInfo:
        """First load at start-up; raises ``TLSError`` so the server refuses to start."""
        self._context, self._info = self._build()
        log.info(
            "TLS certificate loaded",
            extra=kv(file=self._info.cert_path, sha256=self._info.sha256),
        )
        return self._info

    def reload(self) -> bool:
        """Reads the files again into a new context; on failure keeps the old one and says why."""
        try:
            ctx, info = self._build()
        except TLSError as e:
            log.error("TLS reload failed, keeping the previous certificate: %s", e)
            return False
        self._context, self._info = ctx, info
        log.info(
            "TLS certificate reloaded",
            extra=kv(file=info.source or info.cert_path, serial=info.serial, sha256=info.sha256),
        )
        return True

    def install(self, cert_pem: bytes, key_pem: bytes) -> bool:
        """Serves this certificate from now on (ACME); on failure keeps the old one, says why."""
        previous = self._acme
        self._acme = (cert_pem, key_pem)
        if self.reload():
            return True
        self._acme = previous
        return False

    def signer(self) -> tuple[bytes, bytes] | None:
        """(chain PEM, key PEM) of the served certificate, to sign with; None when it is
        self-signed (a signature by it proves nothing to anyone) or cannot be read."""
        if self.info.self_signed:
            return None
        if self._acme is not None:
            return self._acme
        try:
            return self.info.cert_path.read_bytes(), self.info.key_path.read_bytes()
        except OSError as e:
            log.warning("cannot read the certificate to sign with: %s", e)
            return None

    def set_challenges(self, pending: dict[str, str]) -> None:
        """The TLS-ALPN-01 challenges to answer now (name -> key authorization)."""
        self.challenges.update(pending)
        if self._context is not None:
            self.challenges.attach(self._context)

    @property
    def context(self) -> ssl.SSLContext:
        if self._context is None:
            raise RuntimeError("TLSManager.load() has not been called")
        return self._context

    @property
    def info(self) -> CertificateInfo:
        if self._info is None:
            raise RuntimeError("TLSManager.load() has not been called")
        return self._info
