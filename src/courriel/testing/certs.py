"""A private certificate authority for tests: server certificates any name, one CA file to trust.

Theory of operation
-------------------
``TestCA(directory)`` makes an EC P-256 CA key and self-signed CA certificate once; ``issue``
signs a leaf certificate for the names given (DNS names, IP addresses) and writes
``<stem>.pem`` (leaf then CA, the chain a server sends) and ``<stem>.key``. ``self_signed``
makes a certificate no CA vouches for, for the "bad certificate" cases. ``ca_file`` is what
a client trusts. Keys are small EC keys so making a few per test run costs milliseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_DAY = dt.timedelta(days=1)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class TestCA:
    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "courriel test CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(_pem(self.cert))

    def issue(self, stem: str, names: list[str], *, days: int = 30) -> tuple[Path, Path]:
        """A leaf for ``names`` signed by this CA: (chain file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + days * _DAY)
            .add_extension(_san(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        cert_path.write_bytes(_pem(cert) + _pem(self.cert))
        _write_key(key, key_path)
        return cert_path, key_path


def self_signed(directory: Path, stem: str, names: list[str]) -> tuple[Path, Path]:
    """A certificate for ``names`` that no CA signed: (cert file, key file)."""
    other = TestCA(directory / f"{stem}-ca", name=f"untrusted {stem}")
    return other.issue(stem, names)


def leaf_der(cert_path: Path) -> bytes:
    """The first certificate of a PEM chain file, as DER."""
    cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    return cert.public_bytes(serialization.Encoding.DER)


def spki_sha256(der: bytes) -> str:
    """The SHA-256 of a certificate's public key, hex: the data of a "3 1 1" TLSA record."""
    key = x509.load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()
