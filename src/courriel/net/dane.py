"""DANE for SMTP (RFC 7672): does a server's certificate chain match its TLSA records?

Theory of operation
-------------------
When the resolver says (AD bit) that the TLSA records at ``_25._tcp.<mx host>`` are
DNSSEC-validated, the MX must present TLS and a chain that one usable record matches;
otherwise the delivery is deferred, never sent in clear (RFC 7672 §2.2). ``check`` is pure:
records and the DER certificates the server sent (leaf first) in, a reason out (``None``
when it matches).

Records, as RFC 7672 §3.1 asks of SMTP:

* DANE-EE (usage 3) matches the leaf certificate (selector 0) or its public key (selector 1),
  exactly (type 0), by SHA-256 (1) or SHA-512 (2). Names and dates are not checked: the DNS
  record *is* the binding to the name (RFC 7672 §3.1.1).
* DANE-TA (usage 2) matches a certificate of the chain other than the leaf; the leaf must then
  be issued by it, directly or through the certificates between them, each signature checked,
  the leaf within its dates, and one of its names the MX host name (RFC 7672 §3.2.2).
* PKIX-TA and PKIX-EE (usages 0 and 1) are not used for SMTP (RFC 7672 §3.1.3), and records of
  unknown usage, selector or type are skipped. If no record is usable, TLS is still mandatory
  but unauthenticated (RFC 7672 §2.2 "unusable TLSA records").
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from courriel.net.resolver import Tlsa

DANE_TA = 2
DANE_EE = 3


def usable(records: Sequence[Tlsa]) -> list[Tlsa]:
    """The records an SMTP client may use (RFC 7672 §3.1)."""
    return [
        r
        for r in records
        if r.usage in (DANE_TA, DANE_EE) and r.selector in (0, 1) and r.mtype in (0, 1, 2)
    ]


def _selected(cert: x509.Certificate, selector: int) -> bytes:
    if selector == 0:
        return cert.public_bytes(serialization.Encoding.DER)
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _matches(record: Tlsa, cert: x509.Certificate) -> bool:
    data = _selected(cert, record.selector)
    if record.mtype == 1:
        data = hashlib.sha256(data).digest()
    elif record.mtype == 2:
        data = hashlib.sha512(data).digest()
    return data == record.data


def _name_matches(cert: x509.Certificate, host: str) -> bool:
    """RFC 6125 DNS-ID matching, one "*" only as the whole left-most label."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _issued_chain(leaf: x509.Certificate, chain: list[x509.Certificate], anchor: int) -> bool:
    """Whether ``chain[0]`` (the leaf) leads to ``chain[anchor]`` by checked signatures."""
    child = leaf
    for issuer in chain[1 : anchor + 1]:
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return False
        child = issuer
    return True


def check(records: Sequence[Tlsa], chain_der: Sequence[bytes], host: str) -> str | None:
    """``None`` when the chain matches a usable record; else why not, in words."""
    records = usable(records)
    if not records:
        return None  # RFC 7672 §2.2: encrypt, without authentication
    if not chain_der:
        return f"{host} sent no certificate"
    try:
        chain = [x509.load_der_x509_certificate(der) for der in chain_der]
    except ValueError:
        return f"{host} sent a certificate that cannot be read"
    leaf = chain[0]
    for record in records:
        if record.usage == DANE_EE and _matches(record, leaf):  # RFC 7672 §3.1.1
            return None
    now = dt.datetime.now(dt.UTC)
    for record in records:
        if record.usage != DANE_TA:
            continue
        for index in range(1, len(chain)):
            if not _matches(record, chain[index]):
                continue
            if not _issued_chain(leaf, chain, index):
                continue
            if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
                return f"the certificate of {host} is outside its validity dates"
            if not _name_matches(leaf, host):  # RFC 7672 §3.2.2
                return f"the certificate of {host} does not name {host}"
            return None
    return f"the certificate of {host} matches none of its DNSSEC-signed TLSA records (DANE)"
