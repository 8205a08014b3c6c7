"""DKIM against independent implementations: OpenDKIM verifies ours, Mail::DKIM signs for us.

opendkim-testmsg asks DNS through the C library, which reads only /etc/resolv.conf, so it runs
in a mount namespace of its own where that file names a dnsmasq on port 53 of a loopback
address chosen for this test (root only, as in CI).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.dkim import DkimVerifier, Outcome, SigningKey, sign
from courriel.testing.dns import DnsServer, dnsmasq_program, run_with_nameserver, sbin_program
from courriel.testing.mailauth import AuthKeys, auth_zone, message
from courriel.testing.missing import report_missing


@pytest.fixture(scope="module")
def port53(request: pytest.FixtureRequest, keys: AuthKeys) -> Iterator[DnsServer]:
    """The test records on port 53 of an address of this test's own."""
    program = dnsmasq_program(request.node.nodeid)
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        report_missing("root with unshare (a private /etc/resolv.conf)", request.node.nodeid)
    assert program is not None
    address = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
    with DnsServer(program, auth_zone(keys), address=address, port=53) as server:
        yield server


def opendkim(request: pytest.FixtureRequest) -> str:
    program = sbin_program("opendkim-testmsg")
    if program is None:
        report_missing("program 'opendkim-testmsg'", request.node.nodeid)
    assert program is not None
    return program


def opendkim_verify(server: DnsServer, signed: bytes, tmp: Path, program: str) -> tuple[int, str]:
    done = run_with_nameserver([program], server.address, signed, tmp)
    return done.returncode, done.stderr.decode().strip()


def pkcs1(key: SigningKey, tmp: Path) -> Path:
    loaded = serialization.load_pem_private_key(key.private_pem, None)
    path = tmp / f"{key.domain}.{key.selector}.pem"
    path.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.mark.parametrize("which", ["ed25519", "rsa", "both"])
def test_opendkim_verifies_what_courriel_signs(
    request: pytest.FixtureRequest, port53: DnsServer, keys: AuthKeys, tmp_path: Path, which: str
) -> None:
    program = opendkim(request)
    chosen = {"ed25519": keys.org[:1], "rsa": keys.org[1:], "both": keys.org}[which]
    msg = message()
    signed = sign(msg, chosen) + msg
    assert opendkim_verify(port53, signed, tmp_path, program) == (0, "")
    # The same signature over a changed body must not verify: OpenDKIM really checked it.
    status, words = opendkim_verify(port53, signed.replace(b"a test", b"a fake"), tmp_path, program)
    assert status != 0 and "Bad signature" in words


async def test_courriel_verifies_what_mail_dkim_signs(
    need_program, keys: AuthKeys, resolver: AuthResolver, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    program = need_program("dkimproxy-sign")
    key = keys.net[0]
    msg = message("carol@example.net")
    done = await asyncio.to_thread(
        subprocess.run,
        [program, "--method=relaxed", "--domain=example.net", f"--selector={key.selector}",
         f"--key={pkcs1(key, tmp_path)}"],
        input=msg, capture_output=True, check=True,
    )  # fmt: skip
    field = done.stdout.rstrip(b"\n").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n"
    assert field.startswith(b"DKIM-Signature:") and b"a=rsa-sha256" in field
    (result,) = await DkimVerifier(resolver).verify(field + msg)
    assert (result.domain, result.outcome) == ("example.net", Outcome.PASS)
    (altered,) = await DkimVerifier(resolver).verify(field + msg.replace(b"a test", b"a fake"))
    assert (altered.outcome, altered.reason) == (Outcome.FAIL, "body hash mismatch")


async def test_opendkim_signature_is_read_and_sha1_refused(
    request: pytest.FixtureRequest, keys: AuthKeys, resolver: AuthResolver, tmp_path: Path
) -> None:
    program = opendkim(request)
    key = keys.net[0]
    msg = message("carol@example.net")
    done = await asyncio.to_thread(
        subprocess.run,
        [program, "-C", "-d", "example.net", "-s", key.selector, "-k", str(pkcs1(key, tmp_path))],
        input=msg, capture_output=True, check=True,
    )  # fmt: skip
    signed = done.stdout
    assert signed.endswith(msg) and signed.startswith(b"DKIM-Signature:")
    # opendkim-testmsg signs with rsa-sha1, which RFC 8301 §3.1 forbids verifiers to accept.
    (result,) = await DkimVerifier(resolver).verify(signed)
    assert (result.domain, result.selector) == ("example.net", key.selector)
    assert (result.outcome, result.reason) == (Outcome.PERMERROR, "rsa-sha1 is no longer accepted")
