"""The web listeners' behaviour with hostile or plain clients, over real sockets and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from collections.abc import Iterator

import pytest

from courriel.testing.server import MailServer, start_server
from courriel.testing.web import fetch
from courriel.web import server as web_server

HEAD_TIMEOUT = 1.0
DOMAIN = "example.org"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(web_server, "HEAD_TIMEOUT", HEAD_TIMEOUT)
        s = start_server(tmp_path_factory.mktemp("weblistener"))
    try:
        s.add_user(f"alice@{DOMAIN}", "correct horse")
        yield s
    finally:
        s.stop()


async def _slowloris(server: MailServer, done: asyncio.Event) -> float:
    """Sends a header line every 0.2 s, never ending the head; the seconds until cut off."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port("https"), ssl=server.ssl_context(), server_hostname=server.hostname
    )
    start = time.monotonic()
    writer.write(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.org\r\n")
    try:
        for i in range(100):
            await asyncio.sleep(0.2)
            writer.write(f"X-Slow-{i}: a\r\n".encode())
            await writer.drain()
            if reader.at_eof():
                break
        data = await asyncio.wait_for(reader.read(), 5)
    except (ConnectionError, ssl.SSLError):
        data = b""
    finally:
        done.set()
        writer.transport.abort()  # the server closed it; nothing is left to say
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    assert data == b""  # no answer: the connection was closed
    return time.monotonic() - start


def test_a_slowloris_client_is_cut_off_while_others_are_served(server: MailServer) -> None:
    async def main() -> tuple[float, list[int]]:
        done = asyncio.Event()
        slow = asyncio.create_task(_slowloris(server, done))
        statuses = []
        while not done.is_set():  # served all along, each within the head timeout
            status, _, _ = await asyncio.wait_for(
                asyncio.to_thread(
                    fetch, server, "GET", "/.well-known/mta-sts.txt", host=f"mta-sts.{DOMAIN}"
                ),
                HEAD_TIMEOUT,
            )
            statuses.append(status)
            await asyncio.sleep(0.1)
        return await slow, statuses

    seconds, statuses = asyncio.run(main())
    assert HEAD_TIMEOUT <= seconds < HEAD_TIMEOUT + 1.5
    assert len(statuses) >= 3 and set(statuses) == {200}


def test_huge_headers_are_refused(server: MailServer) -> None:
    path = "/.well-known/mta-sts.txt"
    status, _, _ = fetch(server, "GET", path, headers={"X-Big": "a" * 20000})
    assert status in (400, 431)
    status, _, _ = fetch(server, "GET", path, headers={f"X-H{i}": "a" for i in range(200)})
    assert status in (400, 431)
    status, _, _ = fetch(server, "GET", path, host=f"mta-sts.{DOMAIN}")
    assert status == 200  # and a normal request still is served


def test_plain_http_redirects_to_https(server: MailServer) -> None:
    path = "/mail/config-v1.1.xml?emailaddress=a@b.org"
    status, location, _ = fetch(
        server, "GET", path, host=f"autoconfig.{DOMAIN}", port=server.port("http")
    )
    assert status == 308
    assert location == f"https://autoconfig.{DOMAIN}:{server.port('https')}{path}"


def _fingerprint(server: MailServer) -> str:
    async def main() -> str:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _, writer = await asyncio.open_connection("127.0.0.1", server.port("https"), ssl=context)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
        return hashlib.sha256(der).hexdigest()

    return asyncio.run(main())


def test_new_connections_get_the_reloaded_certificate(server: MailServer) -> None:
    before = _fingerprint(server)
    tls_dir = server.cfg.data_dir / "tls"
    for name in ("cert.pem", "key.pem"):
        (tls_dir / name).unlink()  # the next load makes a new self-signed certificate

    async def reload() -> bool:
        return server.running.reload_tls()

    assert server.call(reload())
    after = _fingerprint(server)
    assert after != before
    der = ssl.PEM_cert_to_DER_cert(server.cert_path.read_text())
    assert after == hashlib.sha256(der).hexdigest()
