"""Apple configuration profiles (``.mobileconfig``) that set up Mail on iOS, iPadOS and macOS.

Theory of operation
-------------------
``mobileconfig_for`` builds one profile per user: a "Configuration" property list (written with
``plistlib``) holding one ``com.apple.mail.managed`` payload -- an IMAP account and its SMTP
server, both with the user's address as user name and password authentication inside TLS, on
the ports of the same ``Offer`` the printed settings table and Thunderbird's autoconfig come
from; implicit TLS is preferred over STARTTLS (RFC 8314 §5.1). The password is not in it: Mail
asks for it once when the profile is installed. Identifiers and UUIDs are derived from the
host name and the address, so installing a newer profile replaces the older one.

When the server's certificate is not self-signed the profile is signed (CMS SignedData with the
content inside, DER, made by ``cryptography``'s PKCS #7 builder, RFC 5652 §5) with that
certificate and key, and the chain is included, so the device shows it as verified. A
self-signed certificate would only make the device warn, so the profile is left unsigned then.

``routes`` serves it at ``/profile/apple.mobileconfig`` to a user who signs in with HTTP Basic
(RFC 7617) against the same authenticator and failed-login limits as IMAP, POP3 and SMTP.
"""

from __future__ import annotations

import base64
import binascii
import logging
import plistlib
import uuid
from typing import TYPE_CHECKING

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from courriel.web.settings import Offer, Server

if TYPE_CHECKING:
    from courriel.accounts.authenticator import Authenticator
    from courriel.accounts.ratelimit import AuthLimiter
    from courriel.net.tls import TLSManager

log = logging.getLogger("courriel.web")

PATH = "/profile/apple.mobileconfig"
CONTENT_TYPE = "application/x-apple-aspen-config"
REALM = 'Basic realm="courriel", charset="UTF-8"'  # RFC 7617 §2, §2.1


class ProfileError(Exception):
    """No profile can be made (the server offers no IMAP or no submission listener)."""


def _best(offer: Offer, protocol: str) -> Server:
    for server in offer.servers:  # ``Offer`` lists implicit TLS first (RFC 8314 §5.1)
        if server.protocol == protocol:
            return server
    raise ProfileError(f"no {protocol} listener is enabled: a mail profile needs one")


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, "/".join(parts))).upper()


def profile(address: str, offer: Offer, display_name: str = "") -> dict[str, object]:
    """The profile as a property list dictionary (what Apple's devices read)."""
    imap, smtp = _best(offer, "imap"), _best(offer, "smtp")
    reverse = ".".join(reversed(offer.hostname.split(".")))
    identifier = f"{reverse}.courriel.mail.{address}"
    mail: dict[str, object] = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.account",
        "PayloadUUID": _uuid(offer.hostname, address, "account"),
        "PayloadDisplayName": f"Mail: {address}",
        "EmailAccountDescription": address,
        "EmailAccountName": display_name or address,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": address,
        "IncomingMailServerHostName": offer.hostname,
        "IncomingMailServerPortNumber": imap.port,
        "IncomingMailServerUseSSL": True,  # both TLS kinds: Mail uses STARTTLS on 143
        "IncomingMailServerUsername": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": offer.hostname,
        "OutgoingMailServerPortNumber": smtp.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    return {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": _uuid(offer.hostname, address),
        "PayloadDisplayName": f"{offer.hostname} mail for {address}",
        "PayloadDescription": f"Sets up the mail account {address} on {offer.hostname}.",
        "PayloadOrganization": offer.hostname,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [mail],
    }


def sign(data: bytes, chain_pem: bytes, key_pem: bytes) -> bytes:
    """CMS SignedData carrying ``data`` (not detached), DER, with the chain included."""
    chain = x509.load_pem_x509_certificates(chain_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ProfileError("the certificate's key cannot sign profiles (RSA or ECDSA needed)")
    builder = (
        pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(chain[0], key, hashes.SHA256())
    )
    for cert in chain[1:]:
        builder = builder.add_certificate(cert)
    return builder.sign(serialization.Encoding.DER, [])  # no DetachedSignature: content inside


def mobileconfig_for(
    address: str,
    offer: Offer,
    *,
    signer: tuple[bytes, bytes] | None = None,
    display_name: str = "",
) -> bytes:
    """The ``.mobileconfig`` bytes for ``address``; signed with ``signer`` (chain PEM, key PEM)
    when given -- pass ``TLSManager.signer()``, which is None for a self-signed certificate."""
    data = plistlib.dumps(profile(address, offer, display_name), fmt=plistlib.FMT_XML)
    return data if signer is None else sign(data, *signer)


def _credentials(request: web.Request) -> tuple[str, str] | None:
    kind, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")  # RFC 7617 §2.1
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = text.partition(":")
    return (user, password) if colon and user else None


def routes(
    app: web.Application,
    offer: Offer,
    tls: TLSManager,
    auth: Authenticator,
    limiter: AuthLimiter,
) -> None:
    """Adds ``PATH``: the profile of the user who signs in with HTTP Basic."""

    def challenge(text: str) -> web.HTTPUnauthorized:
        return web.HTTPUnauthorized(text=text, headers={"WWW-Authenticate": REALM})

    async def download(request: web.Request) -> web.Response:
        credentials = _credentials(request)
        if credentials is None:
            raise challenge("sign in with your e-mail address and password\n")
        username, password = credentials
        ip = request.remote or ""
        refusal = await limiter.check(ip, username)
        if refusal is not None:
            log.info("profile download refused: %s", refusal.text)
            raise web.HTTPTooManyRequests(
                text=f"{refusal.text}\n", headers={"Retry-After": str(refusal.retry_seconds)}
            )
        user = await auth.authenticate(username, password)
        if user is None:
            await limiter.failed(ip, username)
            log.info("profile download refused: wrong user name or password")
            raise challenge("wrong e-mail address or password\n")
        await limiter.succeeded(ip, username)
        try:
            body = mobileconfig_for(user.address, offer, signer=tls.signer())
        except ProfileError as e:
            raise web.HTTPServiceUnavailable(text=f"{e}\n") from None
        disposition = 'attachment; filename="mail.mobileconfig"'
        return web.Response(
            body=body,
            content_type=CONTENT_TYPE,
            headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
        )

    app.router.add_get(PATH, download)
