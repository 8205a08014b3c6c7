"""Server TLS: the self-signed certificate, protocol versions, and reloading."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import stat
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from runtime_support import HOSTNAME, ServeFactory, client_context, close, read_line

from courriel.config import Config, TLSConfig
from courriel.net.tls import (
    TLSError,
    TLSManager,
    certificate_info,
    ensure_self_signed,
    make_self_signed,
)
from courriel.testing import placeholder


def test_self_signed_is_made_once_and_reused(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, HOSTNAME)
    first = (cert.read_bytes(), key.read_bytes())
    assert ensure_self_signed(tmp_path, HOSTNAME) == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cert == tmp_path / "tls" / "cert.pem"


def test_self_signed_names_cover_hostname_and_loopback(cert_dir: Path) -> None:
    cert = x509.load_pem_x509_certificate((cert_dir / "cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {HOSTNAME, "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert days >= 3650
    info = certificate_info(cert_dir / "cert.pem", cert_dir / "key.pem")
    assert info.self_signed
    assert len(info.sha256.split(":")) == 32


def test_unicode_hostname_becomes_a_label() -> None:
    cert_pem, _ = make_self_signed("mail.exämple.org")
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mail.xn--exmple-cua.org" in san.get_values_for_type(x509.DNSName)


def test_configured_files_that_do_not_exist_are_named(tmp_path: Path) -> None:
    tls = TLSConfig(cert="missing-cert.pem", key="missing-key.pem")
    cfg = Config(path=tmp_path / "c.toml", data_dir=tmp_path, hostname=HOSTNAME, tls=tls)
    with pytest.raises(TLSError, match=r"missing-cert\.pem"):
        TLSManager(cfg).load()


async def _greeting(port: int, ctx: ssl.SSLContext) -> tuple[bytes, str]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname=HOSTNAME
    )
    try:
        obj = writer.get_extra_info("ssl_object")
        return await read_line(reader), obj.version()
    finally:
        await close(writer)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_tls_12_and_13_are_accepted(
    serving: ServeFactory, cfg: Config, version: ssl.TLSVersion
) -> None:
    ctx = client_context(cfg.data_dir / "tls" / "cert.pem")
    ctx.minimum_version = ctx.maximum_version = version
    async with serving(placeholder.imap(HOSTNAME), name="imaps", implicit_tls=True) as lst:
        line, negotiated = await _greeting(lst.addresses[0][1], ctx)
    assert line.startswith(b"* BYE [UNAVAILABLE] courriel: IMAP service not enabled")
    assert (
        negotiated
        == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    )


async def test_tls_11_is_refused_by_the_server(
    serving: ServeFactory, cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = client_context(cfg.data_dir / "tls" / "cert.pem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    # Security level 0 lets this client really offer TLS 1.1, so the refusal is the server's.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    caplog.set_level(logging.INFO, logger="courriel")
    async with serving(placeholder.imap(HOSTNAME), name="imaps", implicit_tls=True) as lst:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await _greeting(lst.addresses[0][1], ctx)
    # Leaving ``serving`` waited for the connection's task, so its log line is written.
    failure = next(r.getMessage() for r in caplog.records if "handshake failed" in r.getMessage())
    assert "UNSUPPORTED_PROTOCOL" in failure.upper() or "VERSION" in failure.upper()


def _replace_certificate(cfg: Config) -> bytes:
    cert_pem, key_pem = make_self_signed(HOSTNAME)
    (cfg.data_dir / "tls" / "key.pem").write_bytes(key_pem)
    (cfg.data_dir / "tls" / "cert.pem").write_bytes(cert_pem)
    return cert_pem


def test_reload_makes_a_new_context_and_keeps_it_on_failure(
    tls_manager: TLSManager, cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    before = tls_manager.context
    old_fp = tls_manager.info.sha256
    new_pem = _replace_certificate(cfg)
    assert tls_manager.reload()
    assert tls_manager.context is not before
    new_fp = tls_manager.info.sha256
    assert new_fp != old_fp
    expected = x509.load_pem_x509_certificate(new_pem).fingerprint(hashes.SHA256()).hex()
    assert new_fp.replace(":", "").lower() == expected
    good = tls_manager.context
    (cfg.data_dir / "tls" / "key.pem").write_text("not a key\n")
    with caplog.at_level(logging.ERROR, logger="courriel"):
        assert not tls_manager.reload()
    assert tls_manager.context is good
    assert tls_manager.info.sha256 == new_fp
    assert any("TLS reload failed" in r.getMessage() for r in caplog.records)
