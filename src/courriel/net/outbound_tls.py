"""How much TLS a delivery to one mail host needs, and the client contexts that provide it.

Theory of operation
-------------------
Each host gets a ``HostTls``: a level and, in words, why ("MTA-STS policy of example.org"),
so a failure can say "the MTA-STS policy of example.org requires TLS and mx.example.org
offered none". Levels, named after Postfix's ``smtp_tls_security_level`` values:

* ``NONE``: never STARTTLS (a smarthost configured with ``smarthost_tls = "none"``);
* ``MAY``: STARTTLS when offered, the certificate not checked (RFC 7435 opportunistic
  security: encryption against passive listeners; checking names would only make delivery
  fail for the many MX hosts with self-signed certificates). A handshake that fails is retried
  once in clear, as Postfix does at this level;
* ``VERIFY``: TLS required, the certificate chain checked against the trust store and a name
  in it matching the host (MTA-STS ``enforce``, REQUIRETLS, a smarthost);
* ``DANE``: TLS required, the chain matched against DNSSEC-validated TLSA records
  (``courriel.net.dane``), the trust store not consulted (RFC 7672 §3.1).

``contexts`` builds each kind of ``ssl.SSLContext`` once: TLS 1.2 at least (RFC 8996), and for
``VERIFY`` the system's CAs or the ``ca_file`` given (a private CA; tests use their own).
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass

from courriel.net.resolver import Tlsa


class TlsLevel(enum.Enum):
    NONE = "none"
    MAY = "may"
    VERIFY = "verify"
    DANE = "dane"

    @property
    def required(self) -> bool:
        return self in (TlsLevel.VERIFY, TlsLevel.DANE)


@dataclass(frozen=True, slots=True)
class HostTls:
    level: TlsLevel
    why: str = ""  # "the MTA-STS policy of example.org", for failure sentences
    tlsa: tuple[Tlsa, ...] = ()


OPPORTUNISTIC = HostTls(TlsLevel.MAY)
CLEAR = HostTls(TlsLevel.NONE)


class Contexts:
    """The client ``SSLContext`` for each level, made once."""

    def __init__(self, ca_file: str | None = None) -> None:
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE  # checked by DANE, or not at all (MAY)
        unverified.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996
        verified = ssl.create_default_context()  # the system's CAs
        if ca_file:
            verified.load_verify_locations(cafile=ca_file)  # and a private one besides
        verified.minimum_version = ssl.TLSVersion.TLSv1_2
        self._unverified = unverified
        self._verified = verified

    def for_level(self, level: TlsLevel) -> ssl.SSLContext:
        return self._verified if level is TlsLevel.VERIFY else self._unverified
