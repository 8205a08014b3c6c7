"""The status page runs ``courriel check --server`` and shows its report: every section, each
step's verdict and, for a failure, the cause and fix the command line prints."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
import socket
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from courriel import admin_access
from courriel.accounts.passwords import PasswordHasher
from courriel.check import explain
from courriel.config import LISTENERS, Config, ListenerConfig
from courriel.store.base import Store
from courriel.testing.smtp import smtp_server
from courriel.testing.webadmin import (
    ADMIN,
    HOSTNAME,
    PASSWORD,
    USER,
    Browser,
    admin_app,
    admin_config,
)
from courriel.web.admin_check import ServerCheck

_STEP = re.compile(
    r'<h3>([^<]+)</h3>|<span class="status (\w+)">\w+</span></td>\s*<td>([^<]+)</td>', re.S
)


def _closed_port() -> int:
    """A loopback port nobody listens on: bound by us for a moment, then let go."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listener(name: str, address: str, port: int) -> ListenerConfig:
    protocol, standard, implicit = LISTENERS[name]
    return ListenerConfig(name, protocol, standard, implicit, address=address, port=port)


def _verdicts(page: str) -> dict[tuple[str, str], str]:
    """(section, step) -> verdict, read from the rendered report."""
    out: dict[tuple[str, str], str] = {}
    section = ""
    for m in _STEP.finditer(page):
        if m.group(1):
            section = html.unescape(m.group(1))
        else:
            out[(section, html.unescape(m.group(3)))] = m.group(2)
    return out


async def _signed_in(cfg: Config, store: Store, hasher: PasswordHasher, who: str) -> Browser:
    client = TestClient(TestServer(admin_app(store, cfg, hasher)))
    await client.start_server()
    b = Browser(client)
    await b.sign_in(who, PASSWORD)
    await b.get("/admin/status" if who == ADMIN else "/me")
    return b


async def test_the_status_page_shows_the_server_check(
    admin_store: Store, hasher: PasswordHasher, tmp_path: Path
) -> None:
    async with smtp_server(tmp_path / "mx") as mx:
        smtp_host, smtp_port = mx.address("smtp")
        cfg = dataclasses.replace(
            admin_config(tmp_path / "data"),
            listeners=(
                _listener("smtp", smtp_host, smtp_port),  # a real courriel SMTP listener
                _listener("imap", "127.0.0.1", _closed_port()),  # down on purpose
            ),
        )
        b = await _signed_in(cfg, admin_store, hasher, ADMIN)
        try:
            assert "Run the server check" in (await b.get("/admin/status")).text
            page = await b.post("/admin/status/check", {})
        finally:
            await b.client.close()
    assert page.status == 200
    verdicts = _verdicts(page.text)
    sections = {section for section, _ in verdicts}
    assert sections == {
        "DNS of example.org",
        f"reverse DNS of {HOSTNAME}",
        "certificate",
        "listeners",
        "open relay",
        "queue",
        "disk",
    }
    assert verdicts[("listeners", "smtp")] == "ok"
    assert verdicts[("listeners", "imap")] == "fail"
    assert verdicts[("open relay", "relay test")] == "ok"  # courriel refused to relay
    assert "refused: RCPT TO:&lt;courriel-check@relay-test.example.com&gt;" in page.text
    assert verdicts[("certificate", "issuer")] == "warn"  # the admin app's self-signed one
    assert verdicts[("certificate", "expiry")] == "ok"
    assert verdicts[("queue", "oldest entry")] == "ok"
    assert verdicts[("disk", "free space")] in ("ok", "warn", "fail")
    # The DNS server of the test configuration answers nothing: every record fails, explained.
    dns = [v for (s, _), v in verdicts.items() if s == "DNS of example.org"]
    assert dns and set(dns) == {"fail"}
    # The causes and fixes are the command line's own sentences.
    for sentence in (
        explain.REFUSED.cause,
        explain.REFUSED.fix,
        explain.TLS_SELF_SIGNED.cause,
        explain.DNS_NO_ANSWER.fix,
    ):
        assert html.escape(sentence) in page.text, sentence
    assert "FAILED:" in page.text
    [entry] = [
        e for e in await admin_access.audit_entries(admin_store) if e.action == "server check"
    ]
    assert entry.actor == f"web:{ADMIN}" and "FAILED:" in entry.detail


async def test_only_an_administrator_with_the_token_runs_it(
    admin_store: Store, hasher: PasswordHasher, tmp_path: Path
) -> None:
    cfg = admin_config(tmp_path / "data")
    user = await _signed_in(cfg, admin_store, hasher, USER)
    try:
        assert (await user.post("/admin/status/check", {})).status == 403
    finally:
        await user.client.close()
    root = await _signed_in(cfg, admin_store, hasher, ADMIN)
    try:
        r = await root.post("/admin/status/check", {}, csrf=False)
        assert r.status == 403 and "CSRF" in r.text
        r = await root.post("/admin/status/check", {"csrf": "forged"})
        assert r.status == 403
    finally:
        await root.client.close()
    assert not [
        e for e in await admin_access.audit_entries(admin_store) if e.action == "server check"
    ]


async def test_a_check_that_takes_too_long_stops_and_says_so(
    admin_store: Store, tmp_path: Path
) -> None:
    with socket.socket(
        socket.AF_INET, socket.SOCK_DGRAM
    ) as silent:  # a DNS server that never answers
        silent.bind(("127.0.0.1", 0))
        host, port = silent.getsockname()
        cfg = admin_config(tmp_path / "data", nameservers=(f"{host}:{port}",))
        check = ServerCheck(cfg, admin_store, total_seconds=0.3)
        started = time.monotonic()
        task = asyncio.create_task(check.run("web:" + ADMIN))
        await asyncio.sleep(0.05)
        assert check.busy  # a second click now is refused by the page
        run = await task
        elapsed = time.monotonic() - started
    assert elapsed < 1.0  # the DNS timeout alone is 1 s a query
    assert not check.busy
    assert run.stopped.startswith("The check was stopped after 0.3 seconds;")
    assert not run.passed and run.verdict.endswith("(stopped early)")
    [entry] = [
        e for e in await admin_access.audit_entries(admin_store) if e.action == "server check"
    ]
    assert entry.detail == run.verdict
