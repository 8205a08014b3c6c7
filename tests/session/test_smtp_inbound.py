"""Port 25's policy table (``courriel.session.smtp_inbound``): each verdict of the checks, under
each ``[mailauth]`` setting, becomes the right reply or mailbox; the Junk mailbox is found or
made. The verdicts are given (the checks themselves are tested against dnsmasq elsewhere);
the store is a real one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from courriel.config import MailAuthConfig
from courriel.mail.auth.dmarc import DmarcOutcome, DmarcResult
from courriel.mail.auth.inbound import Action, Verdict
from courriel.session.smtp_inbound import (
    CHECK_FAILED,
    Placement,
    deliver_junk,
    judge,
    junk_mailbox,
    refusal,
)
from courriel.store.base import DomainPolicy, OnDmarcFailure, Store
from courriel.testing.fill import add_user
from courriel.wire.smtp import Reply

HEADER = b"Authentication-Results: mx.example.test; dmarc=fail header.from=example.org\r\n"
MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
WHY = "SPF: 203.0.113.9 is not allowed to send for example.org; DKIM: no signature"


class Given:
    """Answers every check with one verdict (or raises, for a checker that fails)."""

    def __init__(self, action: Action | None) -> None:
        self.action = action
        self.asked: dict[str, object] = {}

    async def check_inbound(self, *, ip: str, helo: str, mail_from: str, message: bytes) -> Verdict:
        self.asked = {"ip": ip, "helo": helo, "mail_from": mail_from, "message": message}
        if self.action is None:
            raise RuntimeError("a bug in the checks")
        return Verdict(self.action, HEADER, MESSAGE, text=WHY)


async def outcome(action: Action | None, **policy: bool) -> Reply | Placement:
    return await judge(
        Given(action),
        MailAuthConfig(**policy),
        ip="203.0.113.9",
        helo="client.example",
        mail_from="a@example.org",
        message=b"Authentication-Results: forged\r\n" + MESSAGE,
    )


STORED = HEADER + MESSAGE
NOW = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("action", "policy", "expected"),
    [
        (Action.ACCEPT, {}, Placement(STORED)),
        (Action.JUNK, {}, Placement(STORED, junk=True)),
        (Action.JUNK, {"quarantine_to_junk": False}, Placement(STORED)),
        (Action.REJECT, {"reject_on_dmarc_reject": False}, Placement(STORED, junk=True)),
        (
            Action.REJECT,
            {"reject_on_dmarc_reject": False, "quarantine_to_junk": False},
            Placement(STORED, junk=True),
        ),
        (Action.REJECT, {}, Reply(550, "5.7.1", WHY)),
        (Action.DEFER, {}, Reply(451, "4.7.0", WHY)),
        (None, {}, CHECK_FAILED),
    ],
)
async def test_each_verdict_under_each_policy(
    action: Action | None, policy: dict[str, bool], expected: Reply | Placement
) -> None:
    assert await outcome(action, **policy) == expected


async def test_the_checker_gets_the_session_facts() -> None:
    checker = Given(Action.ACCEPT)
    await judge(
        checker, MailAuthConfig(), ip="192.0.2.1", helo="h.example", mail_from="", message=b"m"
    )
    assert checker.asked == {
        "ip": "192.0.2.1",
        "helo": "h.example",
        "mail_from": "",
        "message": b"m",
    }


def test_a_long_or_odd_reason_fits_smtp_reply_lines() -> None:
    reply = refusal(550, "5.7.1", "é\r\n" + "x " * 1000)
    assert reply.text.startswith("? x x")
    assert len(reply.lines) == 4 and reply.lines[-1].endswith("...")
    for line in reply.encode().split(b"\r\n")[:-1]:
        assert len(line) + 2 <= 512  # RFC 5321 §4.5.3.1.5
        assert line.isascii()


async def test_junk_is_found_by_its_attribute_or_made(store: Store) -> None:
    user = await add_user(store, "bob@example.test", "secret")
    made = await junk_mailbox(store, user.id)
    assert (made.name, made.special_use) == ("Junk", "\\Junk")  # made by add_user
    await store.delete_mailbox(user.id, "Junk")
    await store.create_mailbox(user.id, "Spam", special_use="\\Junk")
    assert (await junk_mailbox(store, user.id)).name == "Spam"
    await store.delete_mailbox(user.id, "Spam")
    again = await junk_mailbox(store, user.id)
    assert (again.name, again.special_use) == ("Junk", "\\Junk")
    assert "Junk" in await store.subscriptions(user.id)


async def test_deliver_junk_stores_once_per_user(store: Store) -> None:
    bob = await add_user(store, "bob@example.test", "secret")
    eve = await add_user(store, "eve@example.test", "secret")
    now = datetime(2026, 12, 6, tzinfo=UTC)
    appended = await deliver_junk(store, [bob.id, eve.id, bob.id], STORED, now)
    assert len(appended) == 2
    for user in (bob, eve):
        box = await junk_mailbox(store, user.id)
        [info] = await store.list_messages(box.id)
        assert await store.read_message(box.id, info.uid) == STORED
        inbox = await store.get_mailbox(user.id, "INBOX")
        assert inbox is not None and await store.list_messages(inbox.id) == []


class GivenOverride(Given):
    """A DMARC failure whose ARC chain a trusted sealer vouches for."""

    def __init__(self, action: Action, sealer: str) -> None:
        super().__init__(action)
        self.sealer = sealer

    async def check_inbound(self, *, ip: str, helo: str, mail_from: str, message: bytes) -> Verdict:
        v = await super().check_inbound(ip=ip, helo=helo, mail_from=mail_from, message=message)
        return replace(v, arc_override=self.sealer)


async def per_domain(checker: Given, *policies: DomainPolicy) -> Reply | Placement:
    return await judge(
        checker,
        MailAuthConfig(),
        ip="203.0.113.9",
        helo="client.example",
        mail_from="a@example.org",
        message=MESSAGE,
        domains={p.domain: p for p in policies},
    )


async def test_each_recipient_domain_chooses() -> None:
    own = DomainPolicy("own.example", on_reject=OnDmarcFailure.INBOX)
    plain = DomainPolicy("plain.example")
    junk = DomainPolicy("junk.example", on_reject=OnDmarcFailure.JUNK)
    # Every domain refuses: one 550 for all.
    assert await per_domain(Given(Action.REJECT), plain) == Reply(550, "5.7.1", WHY)
    # One accepts: the message is taken, and the domains that would refuse it get it in Junk.
    mixed = await per_domain(Given(Action.REJECT), own, plain, junk)
    assert isinstance(mixed, Placement) and not mixed.junk
    assert mixed.junk_domains == {"plain.example", "junk.example"}
    assert [mixed.to_junk(d) for d in ("own.example", "plain.example")] == [False, True]
    # Quarantine: Junk unless the domain says INBOX; REJECT is no answer to quarantine.
    quarantine = DomainPolicy("q.example", on_quarantine=OnDmarcFailure.REJECT)
    inbox = DomainPolicy("i.example", on_quarantine=OnDmarcFailure.INBOX)
    placed = await per_domain(Given(Action.JUNK), quarantine, inbox)
    assert isinstance(placed, Placement) and placed.junk_domains == {"q.example"}


async def test_a_domain_may_allow_a_sender_whatever_dmarc_says() -> None:
    dmarc = DmarcResult(DmarcOutcome.FAIL, "lists.partner.example", "partner.example")

    class Failing(Given):
        async def check_inbound(
            self, *, ip: str, helo: str, mail_from: str, message: bytes
        ) -> Verdict:
            v = await super().check_inbound(ip=ip, helo=helo, mail_from=mail_from, message=message)
            return replace(v, dmarc=dmarc)

    recorded: list[tuple[str, tuple[tuple[str, str], ...]]] = []

    async def record(v: Verdict, disposition: str, reasons: tuple[tuple[str, str], ...]) -> None:
        recorded.append((disposition, reasons))

    allowing = DomainPolicy("mine.example", allow_from=("partner.example",))
    placed = await judge(
        Failing(Action.REJECT), MailAuthConfig(), ip="203.0.113.9", helo="h", mail_from="",
        message=MESSAGE, domains={"mine.example": allowing}, record=record,
    )  # fmt: skip
    assert isinstance(placed, Placement) and not placed.junk and not placed.junk_domains
    assert (placed.disposition, placed.reasons) == (
        "none",
        (("local_policy", "the sender is allowed by the recipient domain"),),
    )
    assert recorded == []  # a placement is recorded by the session once the message is stored
    other = DomainPolicy("mine.example", allow_from=("elsewhere.example",))
    refused = await judge(
        Failing(Action.REJECT), MailAuthConfig(), ip="203.0.113.9", helo="h", mail_from="",
        message=MESSAGE, domains={"mine.example": other}, record=record,
    )  # fmt: skip
    assert refused == Reply(550, "5.7.1", WHY)
    assert recorded == [("reject", ())]


async def test_a_trusted_arc_seal_delivers_unless_the_domain_refuses_it() -> None:
    trusting = DomainPolicy("trusting.example")
    wary = DomainPolicy("wary.example", arc_override=False)
    checker = GivenOverride(Action.REJECT, "lists.example.net")
    assert await per_domain(checker, wary) == Reply(550, "5.7.1", WHY)
    placed = await per_domain(checker, trusting, wary)
    assert isinstance(placed, Placement) and placed.junk_domains == {"wary.example"}
    assert placed.verdict is not None and placed.verdict.arc_override == "lists.example.net"
