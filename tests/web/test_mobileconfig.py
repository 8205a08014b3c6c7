"""Apple .mobileconfig profiles: the fields Mail reads, signed when the certificate allows, and
served only to a user who signs in."""

from __future__ import annotations

import base64
import plistlib
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from courriel.testing.certs import TestCA
from courriel.testing.missing import report_missing
from courriel.testing.server import HOSTNAME, MailServer, start_server
from courriel.testing.web import fetch
from courriel.web.mobileconfig import CONTENT_TYPE, PATH, ProfileError, mobileconfig_for
from courriel.web.settings import Offer, Server

OFFER = Offer(
    "mail.example.org",
    (
        Server("imap", True, 993, True),
        Server("imap", True, 143, False),
        Server("smtp", False, 465, True),
        Server("smtp", False, 587, False),
    ),
    "https://mail.example.org",
)
ADDRESS = "alice@example.org"
PASSWORD = "correct horse battery staple"


def mail_payload(profile: dict[str, object]) -> dict[str, object]:
    content = profile["PayloadContent"]
    assert isinstance(content, list) and len(content) == 1
    payload = content[0]
    assert isinstance(payload, dict)
    return payload


def test_the_profile_holds_an_imap_account_with_its_smtp_server() -> None:
    profile = plistlib.loads(mobileconfig_for(ADDRESS, OFFER, display_name="Alice"))
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    mail = mail_payload(profile)
    expected = {
        "PayloadType": "com.apple.mail.managed",
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": ADDRESS,
        "EmailAccountName": "Alice",
        "IncomingMailServerHostName": "mail.example.org",
        "IncomingMailServerPortNumber": 993,  # implicit TLS preferred (RFC 8314 §5.1)
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": ADDRESS,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": "mail.example.org",
        "OutgoingMailServerPortNumber": 465,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": ADDRESS,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    assert {k: mail[k] for k in expected} == expected
    assert "IncomingPassword" not in mail  # Mail asks for the password on installation
    # Stable identifiers: a newer profile for the same user replaces the installed one.
    again = plistlib.loads(mobileconfig_for(ADDRESS, OFFER))
    assert again["PayloadUUID"] == profile["PayloadUUID"]
    assert mail_payload(again)["PayloadUUID"] == mail["PayloadUUID"]
    other = plistlib.loads(mobileconfig_for("bob@example.org", OFFER))
    assert other["PayloadUUID"] != profile["PayloadUUID"]
    # Only STARTTLS listeners: those ports are offered.
    starttls = Offer(OFFER.hostname, OFFER.servers[1::2], OFFER.web_url)
    mail = mail_payload(plistlib.loads(mobileconfig_for(ADDRESS, starttls)))
    assert (mail["IncomingMailServerPortNumber"], mail["OutgoingMailServerPortNumber"]) == (
        143,
        587,
    )
    with pytest.raises(ProfileError, match="no smtp listener"):
        mobileconfig_for(ADDRESS, Offer(OFFER.hostname, OFFER.servers[:2], OFFER.web_url))


def openssl(request: pytest.FixtureRequest) -> str:
    path = shutil.which("openssl")
    if path is None:
        report_missing("program 'openssl'", request.node.nodeid)
    assert path is not None
    return path


def verify(program: str, signed: Path, ca_file: Path, command: str) -> bytes:
    """The content of a signed profile, as ``openssl smime|cms -verify`` checks and gives it."""
    args = ["-verify", "-inform", "DER", "-in", str(signed), "-CAfile", str(ca_file)]
    done = subprocess.run(
        [program, command, *args, "-purpose", "any"],  # a TLS certificate has no S/MIME purpose
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"Verification successful" in done.stderr
    return done.stdout


def test_a_signed_profile_verifies_and_carries_the_profile(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    program = openssl(request)
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue("server", ["mail.example.org"])
    signed = mobileconfig_for(ADDRESS, OFFER, signer=(cert.read_bytes(), key.read_bytes()))
    assert not signed.startswith(b"<?xml")  # DER, not the bare plist
    path = tmp_path / "signed.mobileconfig"
    path.write_bytes(signed)
    for command in ("smime", "cms"):
        content = verify(program, path, ca.ca_file, command)
        assert plistlib.loads(content) == plistlib.loads(mobileconfig_for(ADDRESS, OFFER))
    # A changed byte breaks the signature.
    tampered = signed.replace(b"EmailTypeIMAP", b"EmailTypeIMAQ")
    assert tampered != signed
    path.write_bytes(tampered)
    done = subprocess.run(
        [program, "cms", "-verify", "-inform", "DER", "-in", str(path), "-CAfile", str(ca.ca_file)],
        capture_output=True,
        check=False,
    )
    assert done.returncode != 0


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_the_route_serves_the_signed_in_user_only(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    program = openssl(request)
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue("server", [HOSTNAME, "127.0.0.1"])
    extra = f'[tls]\ncert = "{cert}"\nkey = "{key}"\n'
    server: MailServer = start_server(tmp_path, extra_config=extra)
    try:
        server.add_user(ADDRESS, PASSWORD)
        trust = ssl.create_default_context(cafile=str(ca.ca_file))
        status, _, _ = fetch(server, "GET", PATH, context=trust)
        assert status == 401
        status, _, _ = fetch(server, "GET", PATH, headers=basic(ADDRESS, "wrong"), context=trust)
        assert status == 401
        good = basic(ADDRESS, PASSWORD)
        status, kind, body = fetch(server, "GET", PATH, headers=good, context=trust)
        assert status == 200 and kind == CONTENT_TYPE
        path = tmp_path / "served.mobileconfig"
        path.write_bytes(body)
        mail = mail_payload(plistlib.loads(verify(program, path, ca.ca_file, "cms")))
        assert mail["EmailAddress"] == ADDRESS
        assert mail["IncomingMailServerPortNumber"] == server.port("imaps")
        assert mail["OutgoingMailServerPortNumber"] == server.port("submissions")
    finally:
        server.stop()


def test_with_the_self_signed_certificate_the_profile_is_unsigned(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        server.add_user(ADDRESS, PASSWORD)
        status, kind, body = fetch(server, "GET", PATH, headers=basic(ADDRESS, PASSWORD))
        assert status == 200 and kind == CONTENT_TYPE
        assert mail_payload(plistlib.loads(body))["IncomingMailServerHostName"] == HOSTNAME
        status, _, _ = fetch(server, "GET", PATH, headers={"Authorization": "Basic !!"})
        assert status == 401
    finally:
        server.stop()
