"""DANE matching (RFC 7672) on certificates made here: which TLSA records a chain satisfies.

The transport's use of it against a real Postfix is in tests/integration/test_relay_dane.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from courriel.net.dane import check, usable
from courriel.net.resolver import Tlsa
from courriel.testing.certs import TestCA

HOST = "mx.example.test"
DER = serialization.Encoding.DER


def chain_of(path: Path) -> list[bytes]:
    return [c.public_bytes(DER) for c in x509.load_pem_x509_certificates(path.read_bytes())]


def spki(der: bytes) -> bytes:
    return (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("dane"))


@pytest.fixture(scope="module")
def chain(ca: TestCA) -> list[bytes]:
    return chain_of(ca.issue("mx", [HOST])[0])


def test_dane_ee_matches_key_certificate_and_exact(chain: list[bytes]) -> None:
    leaf = chain[0]
    for record in (
        Tlsa(3, 1, 1, hashlib.sha256(spki(leaf)).digest()),
        Tlsa(3, 0, 1, hashlib.sha256(leaf).digest()),
        Tlsa(3, 1, 2, hashlib.sha512(spki(leaf)).digest()),
        Tlsa(3, 0, 0, leaf),
    ):
        assert check([record], chain, HOST) is None
        assert check([record], chain[:1], "any.other.name") is None  # RFC 7672 §3.1.1


def test_dane_ee_mismatch_names_the_host(chain: list[bytes]) -> None:
    reason = check([Tlsa(3, 1, 1, b"\0" * 32)], chain, HOST)
    assert (
        reason == f"the certificate of {HOST} matches none of its DNSSEC-signed TLSA records (DANE)"
    )


def test_dane_ta_matches_the_issuer_and_checks_the_name(chain: list[bytes]) -> None:
    ta = Tlsa(2, 0, 1, hashlib.sha256(chain[1]).digest())
    assert check([ta], chain, HOST) is None
    assert check([ta], chain, "other.example.test") == (
        "the certificate of other.example.test does not name other.example.test"
    )
    assert check([ta], chain[:1], HOST) is not None  # the anchor was not sent: no match


def test_dane_ta_needs_the_leaf_signed_by_the_anchor(ca: TestCA, chain: list[bytes]) -> None:
    other = TestCA(ca.directory / "other")
    foreign = chain_of(other.issue("mx", [HOST])[0])
    ta = Tlsa(2, 1, 1, hashlib.sha256(spki(chain[1])).digest())
    assert check([ta], [foreign[0], chain[1]], HOST) is not None


def test_dane_ta_refuses_an_expired_leaf(ca: TestCA) -> None:
    old = chain_of(ca.issue("old", [HOST], days=0)[0])
    ta = Tlsa(2, 0, 1, hashlib.sha256(old[1]).digest())
    assert check([ta], old, HOST) == f"the certificate of {HOST} is outside its validity dates"


def test_pkix_usages_and_unknown_types_are_unusable(chain: list[bytes]) -> None:
    records = [Tlsa(0, 0, 1, b"x"), Tlsa(1, 1, 1, b"y"), Tlsa(3, 2, 1, b"z"), Tlsa(3, 1, 9, b"w")]
    assert usable(records) == []
    assert check(records, chain, HOST) is None  # RFC 7672 §2.2: encrypt, unauthenticated


def test_no_certificate_or_garbage(chain: list[bytes]) -> None:
    record = [Tlsa(3, 1, 1, b"\0" * 32)]
    assert check(record, [], HOST) == f"{HOST} sent no certificate"
    assert check(record, [b"not der"], HOST) == f"{HOST} sent a certificate that cannot be read"
