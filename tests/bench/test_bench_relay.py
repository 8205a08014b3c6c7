"""The relay workload's harness: its message, its courriel configuration, its Maildir count,
and the submitters' STARTTLS and AUTH against a scripted server (never a speed)."""

from __future__ import annotations

import asyncio
import base64
import email
import ssl
from pathlib import Path

import pytest
from bench.clients import ClientError, SmtpClient
from bench.corpus import Corpus
from bench.servers import courriel as courriel_server
from bench.servers import relay as relay_path
from bench.workloads.relay import from_sender

from bench import run
from courriel import config
from courriel.testing.certs import TestCA
from courriel.testing.postfix import Postfix


def test_the_message_is_sent_from_the_account_that_logs_in() -> None:
    raw = (
        b"Subject: s\r\nFrom: =?utf-8?q?Ren=C3=A9?=\r\n <rene@example.org>\r\nTo: x@y.test\r\n"
        b"\r\nFrom: not a header\r\n"
    )
    out = from_sender(raw, "relay@example.test")
    header, _, body = out.partition(b"\r\n\r\n")
    assert header.split(b"\r\n") == [b"From: relay@example.test", b"Subject: s", b"To: x@y.test"]
    assert body == b"From: not a header\r\n"
    corpus = from_sender(Corpus().get(1, size=4096).raw, "relay@example.test")
    parsed = email.message_from_bytes(corpus)
    assert parsed.get_all("From") == ["relay@example.test"]
    assert abs(len(corpus) - 4096) < 200


def test_the_relaying_courriel_submits_only_and_resolves_through_the_private_dns(
    tmp_path: Path,
) -> None:
    setup = courriel_server.configure_relay(tmp_path / "c", "127.0.0.1:5353")
    cfg = config.load(setup.config)
    assert cfg.dns.nameservers == ("127.0.0.1:5353",)
    assert not cfg.relay.smarthost  # the MX path, not a smarthost
    enabled = [lc.name for lc in cfg.listeners if lc.enabled]
    assert enabled == ["submission"]
    assert cfg.listener("submission").port == setup.endpoints.smtp


def test_delivered_counts_the_new_files_of_every_receiving_mailbox(tmp_path: Path) -> None:
    users = relay_path.receivers(3)
    assert users[0] == "relay0@receiver.test"
    rx = Postfix(tmp_path, tmp_path / "conf", tmp_path / "vmail", "127.0.0.2", 25, tmp_path)
    path = relay_path.RelayPath(rx, None, None, users)  # type: ignore[arg-type]
    assert path.delivered() == 0  # no Maildir yet
    for n, user in enumerate(users):
        box = rx.maildir(user)
        box.mkdir(parents=True)
        for i in range(n + 1):
            (box / f"{i}.msg").write_bytes(b"x")
    (rx.maildir(users[0]).parent / "tmp").mkdir()
    (rx.maildir(users[0]).parent / "tmp" / "partial").write_bytes(b"x")  # not delivered yet
    assert path.delivered() == 1 + 2 + 3


def test_relay_is_a_workload_of_its_own() -> None:
    assert run.parse_args(["--only", "relay"]).only == ["relay"]
    assert "relay" in run.parse_args([]).only


async def test_submitters_start_tls_then_log_in(tmp_path: Path) -> None:
    cert, key = TestCA(tmp_path).issue("sub", ["127.0.0.1"])
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    seen: list[bytes] = []

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"220 hi\r\n")
        seen.append(await r.readline())
        w.write(b"250-hi\r\n250 STARTTLS\r\n")
        seen.append(await r.readline())
        w.write(b"220 go ahead\r\n")
        await w.drain()
        await w.start_tls(server_tls)
        seen.append(await r.readline())
        w.write(b"250-hi\r\n250 AUTH PLAIN\r\n")
        seen.append(await r.readline())
        good = base64.b64decode(seen[-1].split()[2]).endswith(b"\0secret")
        w.write(b"235 2.7.0 ok\r\n" if good else b"535 5.7.8 no\r\n")
        seen.append(await r.readline())
        w.write(b"535 5.7.8 no\r\n")
        await w.drain()
        w.close()

    server = await asyncio.start_server(script, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client, _ = await SmtpClient.connect("127.0.0.1", port)
        await client.starttls(b"me.example.test")
        await client.login("u@example.test", "secret")
        with pytest.raises(ClientError, match="AUTH refused: 535"):
            await client.login("u@example.test", "wrong")
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen[:3] == [b"EHLO me.example.test\r\n", b"STARTTLS\r\n", b"EHLO me.example.test\r\n"]
    token = base64.b64encode(b"\0u@example.test\0secret")
    assert seen[3] == b"AUTH PLAIN " + token + b"\r\n"
