"""A receiving server that answers 550 5.7.1: courriel accepts the test message, relays it, gets
the refusal, and sends a bounce; the check finds the bounce and explains its reason."""

from __future__ import annotations

import pytest

from courriel.check import explain
from courriel.queue.transport import Outcome, Status
from courriel.testing.check_site import ALICE, PASSWORD, SiteFactory
from courriel.testing.transports import ScriptedTransport

REMOTE = "bob@remote.test"
SPF_REFUSAL = (
    "5.7.1 <bob@remote.test>: Recipient address rejected: Message rejected due to: SPF fail - "
    "not authorized. Please see http://www.open-spf.org/Why;id=alice@example.test;ip=127.0.0.1"
)


DKIM_REFUSAL = "5.7.20 No passing DKIM signature found for example.test"
DMARC_REFUSAL = (
    "5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy"
)


@pytest.mark.parametrize(
    ("text", "enhanced", "expected"),
    [
        (SPF_REFUSAL, "5.7.1", explain.SPF_FAILED),
        (DKIM_REFUSAL, "5.7.20", explain.DKIM_FAILED),
        (DMARC_REFUSAL, "5.7.26", explain.DMARC_FAILED),
    ],
    ids=["spf", "dkim", "dmarc"],
)
def test_receiving_side_refuses_with_550(
    make_site: SiteFactory, text: str, enhanced: str, expected: explain.Explanation
) -> None:
    refusal = Outcome(REMOTE, Status.PERMANENT, text, 550, enhanced, "mx.remote.test")
    transport = ScriptedTransport(script={REMOTE: [refusal]})
    site = make_site(transport=transport)
    r = site.check(
        ALICE,
        "--password-stdin",
        "--to",
        REMOTE,
        "--to-password-stdin",
        "--json",
        stdin=f"{PASSWORD}\nunused\n",
    )
    assert r.status == 1
    assert r.failures() == [(f"delivery to {REMOTE}", expected.cause)]
    step = r.steps("fail")[0]
    assert step["detail"].startswith(f"bounce: 550 {enhanced} ")
    assert text.split(" ", 1)[1][:40] in step["detail"]
    assert [c.domain for c in transport.calls] == ["remote.test"]
    # The test message and the bounce are both gone from alice's INBOX.
    user = site.server.call(site.server.store.get_user(ALICE))
    assert user is not None
    box = site.server.call(site.server.store.get_mailbox(user.id, "INBOX"))
    assert box is not None
    assert site.server.call(site.server.store.list_messages(box.id)) == []


def test_the_spf_sentence() -> None:
    assert explain.SPF_FAILED.cause == (
        "The receiving server refused the message because the sender domain's SPF record "
        "does not list the server that sent it."
    )
