"""The client settings table printed at start-up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from courriel.clientsettings import Endpoint, render
from courriel.net.tls import CertificateInfo

ALL = [
    Endpoint("smtp", False, "", 25),
    Endpoint("imaps", True, "", 993),
    Endpoint("imap", False, "", 143),
    Endpoint("pop3s", True, "", 995),
    Endpoint("pop3", False, "", 110),
    Endpoint("submissions", True, "", 465),
    Endpoint("submission", False, "", 587),
]


def _rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("Service"))
    table = []
    for ln in lines[start + 2 :]:
        if not ln.strip():
            break
        table.append([cell for cell in ln.strip().split("  ") if cell.strip()])
    return [[c.strip() for c in r] for r in table]


def test_every_listener_in_order_with_what_a_person_types() -> None:
    text = render("mail.example.org", ALL)
    assert text.splitlines()[0] == (
        "courriel is ready. Settings for your mail program (Thunderbird, Outlook, Apple Mail):"
    )
    user, auth = "your full e-mail address", "normal password"
    host = "mail.example.org"
    assert _rows(text) == [
        ["IMAP (incoming)", host, "993", "SSL/TLS", user, auth],
        ["IMAP (incoming)", host, "143", "STARTTLS", user, auth],
        ["POP3 (incoming)", host, "995", "SSL/TLS", user, auth],
        ["POP3 (incoming)", host, "110", "STARTTLS", user, auth],
        ["SMTP (outgoing)", host, "465", "SSL/TLS", user, auth],
        ["SMTP (outgoing)", host, "587", "STARTTLS", user, auth],
        ["SMTP MX (inbound)", host, "25", "STARTTLS", "none", "none"],
    ]
    assert "Only programs on this machine" not in text


def test_columns_line_up() -> None:
    lines = render("mx.example.org", ALL).splitlines()
    header = next(ln for ln in lines if ln.lstrip().startswith("Service"))
    starts = [header.index(word) for word in ("Server", "Port", "Security", "User name")]
    body = lines[lines.index(header) + 2 : lines.index(header) + 9]
    for ln in body:
        for start in starts:
            assert ln[start - 2 : start] == "  " and ln[start] != " "


def test_loopback_listener_offers_its_address_and_explains(tmp_path: Path) -> None:
    why = "port 993 is already in use by another program"
    eps = [Endpoint("imaps", True, "127.0.0.1", 10993, why), Endpoint("smtp", False, "", 25)]
    text = render("mail.example.org", eps, config_path=tmp_path / "courriel.toml")
    rows = _rows(text)
    assert rows[0][1:4] == ["mail.example.org or 127.0.0.1", "10993", "SSL/TLS"]
    assert rows[1][1] == "mail.example.org"
    assert "Only programs on this machine can reach imaps (loopback address)." in text
    assert f"  imaps: {why}" in text.splitlines()
    assert f"  {tmp_path / 'courriel.toml'}" in text.splitlines()


def test_self_signed_certificate_fingerprint_is_shown() -> None:
    cert = CertificateInfo(
        cert_path=Path("/data/tls/cert.pem"),
        key_path=Path("/data/tls/key.pem"),
        subject="CN=mail.example.org",
        names=("mail.example.org",),
        not_after=dt.datetime(2036, 1, 1, tzinfo=dt.UTC),
        sha256=":".join(["AB"] * 32),
        self_signed=True,
    )
    text = render("mail.example.org", ALL, cert=cert)
    assert "self-signed" in text
    assert text.rstrip().endswith(cert.sha256)


def test_nothing_enabled() -> None:
    assert "every listener disabled" in render("mail.example.org", [])


def test_the_web_listeners_close_the_table() -> None:
    web = [Endpoint("http", False, "", 80), Endpoint("https", True, "", 443)]
    rows = _rows(render("mail.example.org", [*web, *ALL]))
    assert rows[-2:] == [
        ["Web (set-up, profiles)", "mail.example.org", "443", "SSL/TLS", "none", "none"],
        ["Web (redirects, ACME)", "mail.example.org", "80", "none", "none", "none"],
    ]
    assert rows[0][0] == "IMAP (incoming)"
