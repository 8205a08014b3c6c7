"""HTTP requests to a test server's web listeners, with the standard library's client.

Theory of operation
-------------------
``fetch`` makes one request on its own connection and closes it before returning, so no socket
outlives a test; the Host header is set explicitly (the listeners choose the domain by it) and
TLS trusts only the server's certificate, names checked.
"""

from __future__ import annotations

import http.client
import ssl

from courriel.testing.server import MailServer


def fetch(
    server: MailServer,
    method: str,
    path: str,
    *,
    host: str = "",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    port: int = 0,
    context: ssl.SSLContext | None = None,
) -> tuple[int, str, bytes]:
    """One request: status, Content-Type (or Location for a redirect) and body.

    Over TLS to the https listener (trusting ``context``, by default the server's self-signed
    certificate), or in clear text to ``port`` when it is given.
    """
    conn: http.client.HTTPConnection
    if port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.port("https"), context=context or server.ssl_context(), timeout=10
        )
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host or server.hostname)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(data or b"")))
        conn.endheaders(data)
        r = conn.getresponse()
        kind = r.getheader("Location") if 300 <= r.status < 400 else None
        return r.status, kind or r.getheader("Content-Type") or "", r.read()
    finally:
        conn.close()
