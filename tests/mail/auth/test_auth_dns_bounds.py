"""The bounds on the DNS the checks ask: one TTL-respecting, size-bounded cache per resolver,
TXT answers cut to a bounded size, and SERVFAIL answered 451, never a verdict. (The SPF lookup
and void limits, include loops, huge records, 100 signatures and long ARC chains are tested
beside each check.)"""

from __future__ import annotations

import asyncio

from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.dns import MAX_TXT_BYTES, MAX_TXT_RECORDS
from courriel.mail.auth.inbound import Action, MailAuth
from courriel.testing.mailauth import FORGER_IP, message
from courriel.testing.scripted_dns import Answers, serve_dns


async def test_answers_are_cached_for_their_ttl() -> None:
    answers = Answers({("example.org", "TXT"): ['"v=spf1 -all"']}, authentic=False, ttl=1)
    async with serve_dns(answers) as nameserver:
        resolver = AuthResolver([nameserver], timeout=2.0)
        for _ in range(3):
            assert await resolver.txt("example.org") == [b"v=spf1 -all"]
        assert answers.queries == [("example.org", "TXT")]  # asked once, then cached
        await asyncio.sleep(1.2)  # the TTL ran out: asked again
        assert await resolver.txt("example.org") == [b"v=spf1 -all"]
        assert len(answers.queries) == 2


async def test_the_cache_is_bounded() -> None:
    records = {(f"n{i}.example", "TXT"): [f'"r{i}"'] for i in range(3)}
    answers = Answers(records, authentic=False)  # type: ignore[arg-type]
    async with serve_dns(answers) as nameserver:
        resolver = AuthResolver([nameserver], timeout=2.0, cache_size=2)
        for i in (0, 1, 2, 0):
            assert await resolver.txt(f"n{i}.example") == [f"r{i}".encode()]
        # n0 was pushed out by n2 (least recently used): asked twice; the others once.
        assert [n for n, _ in answers.queries] == [
            "n0.example",
            "n1.example",
            "n2.example",
            "n0.example",
        ]


async def test_txt_answers_are_cut_to_a_bounded_size() -> None:
    long_record = " ".join(['"' + "x" * 250 + '"'] * 40)  # one record of 40 strings, 10,000 octets
    many = [f'"record {i}"' for i in range(30)]
    answers = Answers(
        {("long.example", "TXT"): [long_record], ("many.example", "TXT"): many}, authentic=False
    )
    async with serve_dns(answers) as nameserver:
        resolver = AuthResolver([nameserver], timeout=2.0)
        assert [len(t) for t in await resolver.txt("long.example")] == [MAX_TXT_BYTES]
        assert len(await resolver.txt("many.example")) == MAX_TXT_RECORDS


async def test_servfail_defers_the_message() -> None:
    answers = Answers(
        {("example.org", "TXT"): [f'"v=spf1 ip4:{FORGER_IP} -all"']},
        authentic=False,
        failing={"_dmarc.example.org"},
    )
    async with serve_dns(answers) as nameserver:
        auth = MailAuth(AuthResolver([nameserver], timeout=2.0), "mx.example.com")
        try:
            v = await auth.check_inbound(
                ip=FORGER_IP, helo="h.example", mail_from="a@example.org", message=message()
            )
        finally:
            auth.close()
    assert v.spf is not None and v.spf.outcome.value == "pass"
    assert (v.action, v.code, v.enhanced) == (Action.DEFER, 451, "4.7.0")
    assert "_dmarc.example.org" in v.text and "dmarc=temperror" in v.header.decode()
