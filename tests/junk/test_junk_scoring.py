"""The pure parts of junk scoring: tokens, the Bayesian combination, heuristics, the fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from courriel.junk import bayes, heuristics, score, tokens
from courriel.junk.heuristics import Reason
from courriel.store.base import JunkModel

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def message(head: str, body: str = "Hello there, see you at the meeting.") -> bytes:
    return (head.replace("\n", "\r\n") + "\r\n" + body).encode()


PLAIN = (
    f"From: Anna <anna@partner.test>\nSubject: Budget meeting\nDate: {format_datetime(NOW)}\n"
    "Message-ID: <1@partner.test>\n"
)


def test_tokens_are_bounded_sorted_and_marked() -> None:
    html = (
        "From: x@promo.test\nSubject: Cheap Pills 2024\nContent-Type: text/html\n"
        "X-Other: ignored words here\n"
    )
    found = tokens.tokens(
        message(html, '<p>Cheap <b>pills</b> &amp; <a href="http://Shop.test/x">more</a></p>')
    )
    assert found == tuple(sorted(found))
    assert {"subject:cheap", "subject:pills", "from:promo.test", "url:shop.test"} <= set(found)
    assert {"cheap", "pills", "more", "part:text/html"} <= set(found)
    assert "subject:2024" not in found and "ignored" not in found and "amp" not in found
    huge = message(PLAIN, " ".join(f"word{i}x" for i in range(50_000)))
    assert len(tokens.tokens(huge)) == tokens.MAX_TOKENS
    assert tokens.tokens(b"\xff\xfe garbage without header") is not None


def model(**counts: tuple[int, int]) -> JunkModel:
    return JunkModel(20, 20, dict(counts), None)


def test_bayes_needs_training_and_leans_with_the_evidence() -> None:
    assert bayes.classify(JunkModel(4, 100, {"x": (0, 50)}, None), ("x",)).probability is None
    spammy = bayes.classify(
        model(pills=(0, 18), casino=(1, 15), meeting=(2, 3)), ("pills", "casino", "meeting")
    )
    hammy = bayes.classify(model(agenda=(17, 0), minutes=(14, 1)), ("agenda", "minutes"))
    unknown = bayes.classify(model(agenda=(17, 0)), ("never", "seen"))
    assert spammy.probability is not None and spammy.probability > 0.95
    assert hammy.probability is not None and hammy.probability < 0.05
    assert unknown.probability == 0.5
    assert spammy.clues[0][0] in ("pills", "casino")
    assert bayes.chi2q(0.0, 4) == 1.0 and bayes.chi2q(1000.0, 4) < 1e-100


@pytest.mark.parametrize(
    ("head", "body", "names"),
    [
        (PLAIN, "hi", []),
        (PLAIN.replace("Budget meeting", "BUY NOW CHEAP WATCHES"), "hi", ["SUBJECT_ALL_CAPS"]),
        (PLAIN.replace("Anna <", '"support@bank.test" <'), "hi", ["FROM_NAME_ADDRESS"]),
        (PLAIN.replace("Message-ID: <1@partner.test>\n", ""), "hi", ["NO_MESSAGE_ID"]),
        (PLAIN + "Content-Type: text/html\n", "<p>hi</p>", ["HTML_ONLY"]),
        (
            PLAIN + 'Content-Type: multipart/alternative; boundary="b"\n',
            "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n"
            "<p>hi</p>\r\n--b--\r\n",
            [],
        ),
        (
            PLAIN.replace(format_datetime(NOW), format_datetime(NOW + timedelta(days=40))),
            "hi",
            ["DATE_IN_FUTURE"],
        ),
        (
            PLAIN.replace(format_datetime(NOW), format_datetime(NOW - timedelta(days=400))),
            "hi",
            ["DATE_IN_PAST"],
        ),
        (PLAIN.replace(format_datetime(NOW), "yesterday, sometime"), "hi", ["DATE_MISSING"]),
    ],
)
def test_heuristics(head: str, body: str, names: list[str]) -> None:
    assert [r.name for r in heuristics.check(message(head, body), NOW)] == names


def test_fields_explain_the_score() -> None:
    reasons = [
        Reason("BAYES_99", 6.0, "the recipient's filter says 99.9% junk"),
        Reason("NO_MESSAGE_ID", 1.0, "the message has no Message-ID"),
    ]
    s = score.total(reasons, 5.0)
    assert s.junk and s.points == 7.0
    text = score.fields(s).decode()
    assert text.startswith("X-Spam-Score: 7.0\r\nX-Spam-Status: Yes, score=7.0 required=5.0")
    assert "tests=BAYES_99(+6.0)\r\n\tNO_MESSAGE_ID(+1.0)\r\n" in text  # folded
    assert "X-Spam-Report: BAYES_99: the recipient's filter says 99.9% junk;" in text
    assert all(len(line) <= 78 for line in text.split("\r\n"))
    assert not score.total([], 5.0).junk
    forced = score.total([], 5.0, forced="DMARC policy quarantine")
    assert forced.junk and "sent to Junk: DMARC policy quarantine" in score.fields(forced).decode()


def test_forged_spam_fields_are_removed() -> None:
    raw = (
        b"X-Spam-Status: No,\r\n\tscore=-100\r\nSubject: s\r\nx-spam-flag: NO\r\n"
        b"\r\nX-Spam-Status: body\r\n"
    )
    assert score.strip_spam_fields(raw) == b"Subject: s\r\n\r\nX-Spam-Status: body\r\n"
    assert score.strip_spam_fields(b"no header end") == b"no header end"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nhello words here\r\n",
        b'Content-Type: text/plain; charset="\xff\xfe"\r\n\r\nhello\r\n',
        b"Content-Transfer-Encoding: base64\r\nContent-Type: text/plain\r\n\r\n!not base64@\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 500,
        b"Subject: " + b"x" * 100_000 + b"\r\n\r\n" + b"<" * 100_000,
        bytes(range(256)) * 100,
    ],
)
def test_hostile_messages_give_tokens_and_reasons_not_errors(raw: bytes) -> None:
    assert len(tokens.tokens(raw)) <= tokens.MAX_TOKENS
    heuristics.check(raw, NOW)


def test_fields_are_plain_ascii_whatever_the_reasons_hold() -> None:
    evil = Reason("FROM_NAME_ADDRESS", 2.0, "shows r\u00e9my@bank.test\r\nX-Injected: yes")
    text = score.fields(score.total([evil], 5.0))
    assert text.isascii()
    assert b"\r\nX-Injected" not in text
    assert b"shows r?my@bank.test X-Injected: yes;" in text  # one "?" per character
