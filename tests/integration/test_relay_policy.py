"""TLS policy on the relay, for real: MTA-STS over HTTPS against Postfix, and a smarthost.

MTA-STS: dnsmasq publishes ``_mta-sts.receiver.test`` and the address of
``mta-sts.receiver.test``; an HTTPS server with a certificate from the test CA serves the
policy; Postfix is the MX, with a certificate the relay trusts or one it does not.
Smarthost: a real courriel server's submission port, with STARTTLS and AUTH PLAIN.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from courriel.net.mtasts import MtaSts
from courriel.net.resolver import DnsResolver
from courriel.net.smtp_client import Smarthost
from courriel.net.smtp_conn import Login
from courriel.queue.outbound import Recipient
from courriel.queue.transport import OutboundMessage, Outcome, Status
from courriel.testing.certs import TestCA
from courriel.testing.dnsmasq import DnsServer, Zone, start_dnsmasq
from courriel.testing.https import serve_files
from courriel.testing.net import free_port
from courriel.testing.postfix import Postfix
from courriel.testing.relay import RECEIVER_DOMAIN, make_transport
from courriel.testing.smtp import PASSWORD, smtp_server
from courriel.testing.transcript import HOSTNAME

pytestmark = pytest.mark.usefixtures("dnsmasq_ready")

POLICY_PATH = "/.well-known/mta-sts.txt"


def message(user: str = "alice", sender: str = "sender@origin.test") -> OutboundMessage:
    return OutboundMessage(
        sender=sender,
        recipients=(Recipient(f"{user}@{RECEIVER_DOMAIN}"),),
        message=b"Subject: policy\r\n\r\nhello\r\n",
    )


@asynccontextmanager
async def sts_lab(
    receiver: Postfix, test_ca: TestCA, mx_pattern: str
) -> AsyncIterator[tuple[DnsServer, int, dict[str, int]]]:
    """DNS and the policy server for ``receiver.test`` in enforce mode."""
    port = free_port()
    cert, key = test_ca.issue("mta-sts", [f"mta-sts.{RECEIVER_DOMAIN}"])
    policy = f"version: STSv1\nmode: enforce\nmx: {mx_pattern}\nmax_age: 86400\n"
    zone = Zone(
        domains=[RECEIVER_DOMAIN, "origin.test"],
        mx=[(RECEIVER_DOMAIN, f"mx1.{RECEIVER_DOMAIN}", 10)],
        hosts={
            f"mx1.{RECEIVER_DOMAIN}": [receiver.address],
            f"mta-sts.{RECEIVER_DOMAIN}": ["127.0.0.1"],
        },
        txt={f"_mta-sts.{RECEIVER_DOMAIN}": "v=STSv1; id=20261206"},
    )
    async with (
        start_dnsmasq(zone) as dns,
        serve_files("127.0.0.1", port, cert, key, {POLICY_PATH: ("text/plain", policy)}) as hits,
    ):
        yield dns, port, hits  # type: ignore[misc]


async def test_mta_sts_enforce_with_an_untrusted_certificate_is_deferred(
    untrusted_receiver: Postfix, test_ca: TestCA, tmp_path: Path
) -> None:
    async with sts_lab(untrusted_receiver, test_ca, f"*.{RECEIVER_DOMAIN}") as (dns, port, hits):
        transport = make_transport(
            dns.nameserver, ca_file=test_ca.ca_file, mta_sts_port=port, cache_dir=tmp_path
        )
        (outcome,) = await transport.deliver(RECEIVER_DOMAIN, message())
        await transport.close()
    assert outcome.status is Status.TEMPORARY
    assert (
        f"the MTA-STS policy of {RECEIVER_DOMAIN} requires a verified certificate" in outcome.text
    )
    assert "certificate verify failed" in outcome.text or "self-signed" in outcome.text
    assert hits[POLICY_PATH] == 1
    assert untrusted_receiver.messages(f"alice@{RECEIVER_DOMAIN}") == []


async def test_mta_sts_enforce_delivers_with_verified_tls_and_caches_the_policy(
    receiver: Postfix, test_ca: TestCA, tmp_path: Path
) -> None:
    async with sts_lab(receiver, test_ca, f"mx1.{RECEIVER_DOMAIN}") as (dns, port, hits):
        transport = make_transport(
            dns.nameserver, ca_file=test_ca.ca_file, mta_sts_port=port, cache_dir=tmp_path
        )
        first = await transport.deliver(RECEIVER_DOMAIN, message("alice"))
        await transport.close()
        # A new transport (a restart) reads the policy from the disk cache: no second fetch.
        transport = make_transport(
            dns.nameserver, ca_file=test_ca.ca_file, mta_sts_port=port, cache_dir=tmp_path
        )
        second = await transport.deliver(RECEIVER_DOMAIN, message("bob"))
        await transport.close()
    assert first[0].status is Status.DELIVERED and second[0].status is Status.DELIVERED
    assert hits[POLICY_PATH] == 1
    (stored,) = await receiver.delivered(f"alice@{RECEIVER_DOMAIN}")
    assert b"(using TLS" in stored


async def test_mta_sts_enforce_refuses_an_mx_it_does_not_list(
    receiver: Postfix, test_ca: TestCA, tmp_path: Path
) -> None:
    async with sts_lab(receiver, test_ca, "mx.elsewhere.test") as (dns, port, _):
        transport = make_transport(
            dns.nameserver, ca_file=test_ca.ca_file, mta_sts_port=port, cache_dir=tmp_path
        )
        (outcome,) = await transport.deliver(RECEIVER_DOMAIN, message())
        await transport.close()
    assert outcome.status is Status.TEMPORARY
    assert "lists none of its mail servers (mx1.receiver.test)" in outcome.text
    assert receiver.connections() == 0


async def smarthost_delivery(
    tmp_path: Path, test_ca: TestCA, password: str, mode: str = "starttls"
) -> tuple[Outcome, list[bytes]]:
    cert, key = test_ca.issue("smarthost", [HOSTNAME])
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    (tls_dir / "cert.pem").write_bytes(cert.read_bytes())
    (tls_dir / "key.pem").write_bytes(key.read_bytes())
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        await server.add_user("bob@example.test")
        _, port = server.address("submissions" if mode == "tls" else "submission")
        zone = Zone(domains=["example.test"], hosts={HOSTNAME: ["127.0.0.1"]})
        async with start_dnsmasq(zone) as dns:
            smarthost = Smarthost(HOSTNAME, port, mode, Login("alice@example.test", password))
            transport = make_transport(
                dns.nameserver, ca_file=test_ca.ca_file, smarthost=smarthost, scale=0.02
            )
            msg = OutboundMessage(
                "alice@example.test",
                (Recipient("bob@example.test"),),
                b"From: alice@example.test\r\nSubject: via smarthost\r\n\r\nhello\r\n",
            )
            (outcome,) = await transport.deliver("example.test", msg)
            await transport.close()
        return outcome, await server.inbox("bob@example.test")


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_smarthost_with_tls_and_auth_plain(
    tmp_path: Path, test_ca: TestCA, mode: str
) -> None:
    outcome, inbox = await smarthost_delivery(tmp_path, test_ca, PASSWORD, mode)
    assert outcome.status is Status.DELIVERED, outcome.text
    assert outcome.remote_host == f"{HOSTNAME} [127.0.0.1]"
    (stored,) = inbox
    assert stored.endswith(b"Subject: via smarthost\r\n\r\nhello\r\n")


async def test_smarthost_refusing_the_login_is_temporary(tmp_path: Path, test_ca: TestCA) -> None:
    outcome, inbox = await smarthost_delivery(tmp_path, test_ca, "wrong password")
    assert outcome.status is Status.TEMPORARY
    assert "refused the login of alice@example.test: 535 5.7.8" in outcome.text
    assert inbox == []


async def test_policy_is_fetched_again_when_its_id_changes(test_ca: TestCA, tmp_path: Path) -> None:
    port = free_port()
    cert, key = test_ca.issue("mta-sts", [f"mta-sts.{RECEIVER_DOMAIN}"])
    files = {
        POLICY_PATH: ("text/plain", "version: STSv1\nmode: testing\nmx: a.test\nmax_age: 60\n")
    }
    hosts = {f"mta-sts.{RECEIVER_DOMAIN}": ["127.0.0.1"]}
    async with serve_files("127.0.0.1", port, cert, key, files) as hits:
        for policy_id, fetched in (("one", 1), ("one", 1), ("two", 2)):
            txt = {f"_mta-sts.{RECEIVER_DOMAIN}": f"v=STSv1; id={policy_id}"}
            async with start_dnsmasq(Zone([RECEIVER_DOMAIN], hosts=hosts, txt=txt)) as dns:
                sts = MtaSts(
                    DnsResolver([dns.nameserver]), tmp_path, ca_file=str(test_ca.ca_file), port=port
                )
                policy = await sts.policy(RECEIVER_DOMAIN)
            assert policy is not None and policy.mx == ("a.test",)
            assert hits[POLICY_PATH] == fetched
