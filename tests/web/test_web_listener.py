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
from courriel.web import app as web_app
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
    plain = server.port("http")  # the same limits on port 80
    status, _, _ = fetch(server, "GET", path, headers={"X-Big": "a" * 20000}, port=plain)
    assert status in (400, 431)


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


TRAVERSALS = [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/mail/..%2f..%2f..%2fetc%2fpasswd",
    "/.well-known/autoconfig/mail/..%2F..%2F..%2F..%2Fetc/passwd",
    "/.well-known/acme-challenge/..%2f..%2f..%2fetc%2fpasswd",
    "/.well-known/acme-challenge/../../../etc/passwd",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",  # overlong UTF-8 dots
    "//etc/passwd",
]


def test_no_path_reaches_a_file(server: MailServer) -> None:
    secret = (server.cfg.data_dir / "tls" / "key.pem").read_bytes()
    for path in [*TRAVERSALS, "/tls/key.pem", "/../tls/key.pem", "/courriel.toml"]:
        status, _, body = fetch(server, "GET", path, host=f"autoconfig.{DOMAIN}")
        assert status in (400, 404), path
        assert b"root:" not in body and b"PRIVATE KEY" not in body and body != secret, path
    # Plain HTTP: an ACME challenge token is looked up in the store, never on disk; anything
    # else only redirects.
    for path in TRAVERSALS:
        status, where, body = fetch(server, "GET", path, port=server.port("http"))
        assert status in (308, 400, 404), path
        assert b"root:" not in body, path
        if status == 308:
            assert where.startswith(f"https://{server.hostname}:"), where
    status, _, _ = fetch(server, "GET", "/.well-known/acme-challenge/x", port=server.port("http"))
    assert status == 404


def test_a_slowloris_client_of_plain_http_is_cut_off(server: MailServer) -> None:
    async def main() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port("http"))
        start = time.monotonic()
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        data = b""
        try:
            for i in range(100):
                await asyncio.sleep(0.2)
                if reader.at_eof():
                    break
                writer.write(f"X-Slow-{i}: a\r\n".encode())
                await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
        except ConnectionError:
            data = b""
        finally:
            writer.transport.abort()
        return time.monotonic() - start, data

    seconds, data = asyncio.run(main())
    assert data == b"" and HEAD_TIMEOUT <= seconds < HEAD_TIMEOUT + 1.5


def test_a_trickled_request_body_is_cut_off(server: MailServer) -> None:
    async def main() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            server.port("https"),
            ssl=server.ssl_context(),
            server_hostname=server.hostname,
        )
        start = time.monotonic()
        writer.write(
            b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<"
        )
        answer = asyncio.create_task(reader.read(65536))  # the first bytes that come back
        try:
            for _ in range(100):
                await asyncio.wait([answer], timeout=0.2)
                if answer.done():
                    break
                writer.write(b" ")
                await writer.drain()
            data = await asyncio.wait_for(answer, 5)
        except (ConnectionError, ssl.SSLError):
            data = b""
        finally:
            writer.transport.abort()
        return time.monotonic() - start, data

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(web_app, "BODY_TIMEOUT", HEAD_TIMEOUT)
        seconds, data = asyncio.run(main())
    assert data.startswith(b"HTTP/1.1 408") and seconds < HEAD_TIMEOUT + 1.5
