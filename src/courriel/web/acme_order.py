"""One ACME order (RFC 8555 §7.4) through certbot's ``acme`` library: blocking, run in a thread.

Theory of operation
-------------------
The ``acme`` package speaks the protocol (JWS signing, nonces, polling); this module only
chooses what to ask and turns its errors into one line a person can act on. An order is two
blocking halves around the moment the challenges are published to every worker:

* ``begin``: the directory, the account (registered on first use, RFC 8555 §7.3; looked up
  again when the server forgot it), a new order for the names and, for each authorization not
  yet valid, the challenge of the configured kind with its key authorization (§8.1);
* ``finish``: tells the server each challenge is ready (§7.5.1), waits for the authorizations,
  sends the CSR (§7.4) and returns the chain.

The caller (``courriel.web.acme``) runs both with ``asyncio.to_thread`` and stores the
challenges between them. Errors come out as ``OrderError`` with the reason in plain words.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import requests
from acme import challenges, client, errors, messages
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from josepy.b64 import b64encode
from josepy.jwk import JWKRSA

from courriel.store.acme import AcmeChallenge

USER_AGENT = "courriel"
TIMEOUT = 30  # seconds for one HTTP request to the ACME server
CHALLENGE_SECONDS = 600.0  # a published challenge is forgotten after this


class OrderError(Exception):
    """The order failed; the message says why in words (and names the failing names)."""


class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """The (empty) answer to a tls-alpn-01 challenge, which ``acme`` no longer models."""

    typ = "tls-alpn-01"


@dataclass
class Begun:
    """An order whose challenges are chosen but not yet answered."""

    acme: client.ClientV2
    order: messages.OrderResource
    account_uri: str
    answers: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]]
    challenges: list[AcmeChallenge]


def new_account_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _jwk(key_pem: str) -> JWKRSA:
    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise OrderError("the stored ACME account key is not an RSA key")
    return JWKRSA(key=key)


def _client(directory: str, key: JWKRSA, ca_file: str) -> client.ClientV2:
    net = client.ClientNetwork(key, user_agent=USER_AGENT, timeout=TIMEOUT)
    if ca_file:
        net.verify_ssl = ca_file  # type: ignore[assignment]  # requests takes a CA bundle path
    return client.ClientV2(client.ClientV2.get_directory(directory, net), net)


def _register(acme: client.ClientV2, contact: str) -> str:
    """The account URL, registering the key (RFC 8555 §7.3) or finding its account (§7.3.1)."""
    reg = messages.NewRegistration.from_data(email=contact or None, terms_of_service_agreed=True)
    try:
        return str(acme.new_account(reg).uri)
    except errors.ConflictError as e:  # the key has an account already: its URL
        acme.net.account = messages.RegistrationResource(
            uri=e.location, body=messages.Registration()
        )
        return str(e.location)


def _key_authorization(token: str, key: JWKRSA) -> str:
    thumbprint = b64encode(key.public_key().thumbprint(hash_function=hashes.SHA256))
    return f"{token}.{thumbprint.decode('ascii')}"  # RFC 8555 §8.1


def _choose(
    authz: messages.AuthorizationResource, kind: str, key: JWKRSA, now: float
) -> tuple[messages.ChallengeBody, challenges.ChallengeResponse, AcmeChallenge]:
    name = str(authz.body.identifier.value)
    for challb in authz.body.challenges:
        chall = challb.chall
        if kind == "http-01" and isinstance(chall, challenges.HTTP01):
            response, authorization = chall.response_and_validation(key)
            token = chall.encode("token")
        elif isinstance(chall, challenges.UnrecognizedChallenge) and chall.jobj.get("type") == kind:
            token = str(chall.jobj.get("token", ""))
            authorization = _key_authorization(token, key)
            response = TLSALPN01Response(key_authorization=authorization)
        else:
            continue
        return (
            challb,
            response,
            AcmeChallenge(token, name, kind, authorization, now + CHALLENGE_SECONDS),
        )
    raise OrderError(f"the ACME server offers no {kind} challenge for {name}")


def begin(
    directory: str,
    key_pem: str,
    account_uri: str,
    contact: str,
    csr_pem: bytes,
    kind: str,
    ca_file: str,
    now: float,
) -> Begun:
    key = _jwk(key_pem)
    try:
        acme = _client(directory, key, ca_file)
        if account_uri:
            acme.net.account = messages.RegistrationResource(
                uri=account_uri, body=messages.Registration()
            )
        else:
            account_uri = _register(acme, contact)
        try:
            order = acme.new_order(csr_pem)
        except messages.Error as e:
            if e.code != "accountDoesNotExist":
                raise
            account_uri = _register(acme, contact)  # the server forgot us: register again
            order = acme.new_order(csr_pem)
        begun = Begun(acme, order, account_uri, [], [])
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # validated recently for this account: nothing to prove
            challb, response, challenge = _choose(authz, kind, key, now)
            begun.answers.append((challb, response))
            begun.challenges.append(challenge)
        return begun
    except OrderError:
        raise
    except Exception as e:
        raise OrderError(explain(e)) from e


def finish(begun: Begun, wait_seconds: float) -> str:
    """Answers the challenges and finalizes; the certificate chain PEM."""
    deadline = dt.datetime.now() + dt.timedelta(seconds=wait_seconds)
    try:
        for challb, response in begun.answers:
            begun.acme.answer_challenge(challb, response)
        done = begun.acme.poll_and_finalize(begun.order, deadline)
    except Exception as e:
        raise OrderError(explain(e)) from e
    if not done.fullchain_pem:
        raise OrderError("the ACME server finalized the order without a certificate")
    return str(done.fullchain_pem)


def explain(e: BaseException) -> str:
    """One line saying why, from what the ``acme`` library or ``requests`` raised."""
    if isinstance(e, errors.ValidationError):
        reasons = []
        for authzr in e.failed_authzrs:
            name = authzr.body.identifier.value
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    detail = challb.error.detail or challb.error.description or challb.error.code
                    reasons.append(f"{name}: the ACME server could not validate it: {detail}")
        return "; ".join(reasons) or "the ACME server refused the authorizations"
    if isinstance(e, errors.TimeoutError):
        return "the ACME server did not finish validating in time"
    if isinstance(e, messages.Error):
        return f"the ACME server refused: {e.detail or e.description or e.code}"
    if isinstance(e, requests.exceptions.SSLError):
        return f"the ACME server's certificate is not trusted ([acme] ca_file?): {e}"
    if isinstance(e, requests.exceptions.RequestException):
        return f"cannot reach the ACME server: {e}"
    return f"{type(e).__name__}: {e}"
