"""A large signed and ARC-sealed message is checked without stalling the event loop other
sessions share."""

from __future__ import annotations

import asyncio
import time

from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.arc import ArcOutcome, seal
from courriel.mail.auth.dkim import sign
from courriel.mail.auth.inbound import Action, MailAuth
from courriel.testing.mailauth import ORG_IP, AuthKeys, message


async def test_twenty_megabytes_with_ten_signatures(keys: AuthKeys, resolver: AuthResolver) -> None:
    body = (b"a line of text  with\tspaces " * 2 + b"\r\n") * (20_000_000 // 60)
    msg = message(body=body)
    signed = sign(msg, keys.org) * 5 + msg
    signed = seal(signed, keys.net[0], b"mx.example.net; dmarc=pass", b"none", 1796500000) + signed
    auth = MailAuth(resolver, "mx.example.com")
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        verdict = await auth.check_inbound(
            ip=ORG_IP, helo="mail.example.org", mail_from="alice@example.org", message=signed
        )
    finally:
        done.set()
        await task
        auth.close()
    assert verdict.action is Action.ACCEPT
    assert [s.outcome.value for s in verdict.dkim] == ["pass"] * 10
    assert verdict.arc.outcome is ArcOutcome.PASS
    # The body was hashed in pieces in threads: the loop kept turning meanwhile.
    assert len(gaps) > 10
    assert max(gaps) < 0.5, max(gaps)
