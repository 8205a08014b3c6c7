"""TLS-ALPN-01 (RFC 8737) in the handshake: only a client offering acme-tls/1 for a name with a
pending challenge gets the challenge certificate; every other client the real one."""

from __future__ import annotations

import hashlib
import ssl

from cryptography import x509
from runtime_support import HOSTNAME

from courriel.net.tls import TLSManager
from courriel.net.tls_alpn import ACME_IDENTIFIER, ALPN_PROTOCOL, offered_alpn

AUTHORIZATION = "token-123.thumbprint-456"


def handshake(server: ssl.SSLContext, name: str, alpn: list[str]) -> tuple[x509.Certificate, str]:
    """One handshake over memory: the certificate the client saw and the protocol chosen."""
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        client_ctx.set_alpn_protocols(alpn)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=name)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for key, side in (("c", client), ("s", srv)):
            if not done[key]:
                try:
                    side.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der), client.selected_alpn_protocol() or ""


def test_only_acme_tls_for_the_pending_name_gets_the_challenge(tls_manager: TLSManager) -> None:
    real = tls_manager.info.serial
    tls_manager.set_challenges({HOSTNAME: AUTHORIZATION})
    cert, chosen = handshake(tls_manager.context, HOSTNAME, [ALPN_PROTOCOL])
    assert chosen == ALPN_PROTOCOL  # RFC 8737 §3: the server selects acme-tls/1
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER)
    assert ext.critical
    assert ext.value.public_bytes() == b"\x04\x20" + hashlib.sha256(AUTHORIZATION.encode()).digest()
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == (
        x509.SubjectAlternativeName([x509.DNSName(HOSTNAME)])
    )
    # A browser or mail client asking for the same name without acme-tls/1: the real one.
    for alpn in ([], ["http/1.1", "h2"]):
        cert, chosen = handshake(tls_manager.context, HOSTNAME, alpn)
        assert format(cert.serial_number, "x") == real and chosen == ""
    # acme-tls/1 for a name with no challenge: the real one too.
    cert, _ = handshake(tls_manager.context, "other.example.test", [ALPN_PROTOCOL])
    assert format(cert.serial_number, "x") == real
    # Once the challenge is gone, nobody gets it, and the callbacks are off.
    tls_manager.set_challenges({})
    cert, _ = handshake(tls_manager.context, HOSTNAME, [ALPN_PROTOCOL])
    assert format(cert.serial_number, "x") == real
    assert tls_manager.context.sni_callback is None


def test_a_reload_keeps_answering_the_pending_challenge(tls_manager: TLSManager) -> None:
    tls_manager.set_challenges({HOSTNAME: AUTHORIZATION})
    assert tls_manager.reload()
    cert, chosen = handshake(tls_manager.context, HOSTNAME, [ALPN_PROTOCOL])
    assert chosen == ALPN_PROTOCOL and cert.extensions.get_extension_for_oid(ACME_IDENTIFIER)


def test_alpn_is_read_from_a_client_hello_and_garbage_gives_nothing() -> None:
    hello = bytearray(b"\x01\x00\x00\x00" + b"\x03\x03" + bytes(32) + b"\x00")
    hello += b"\x00\x02\x13\x01" + b"\x01\x00"  # one suite, no compression
    alpn = b"\x00\x10\x00\x0d\x00\x0b\x0aacme-tls/1"  # type 16, sizes, one protocol
    hello += len(alpn).to_bytes(2, "big") + alpn
    assert offered_alpn(bytes(hello)) == [b"acme-tls/1"]
    for bad in (b"", b"\x01", bytes(hello[:50]), b"\x02" + bytes(hello[1:]), bytes(200)):
        assert offered_alpn(bad) == []
