"""A corpus of ham-like and spam-like messages made from a seed, for junk filter tests.

Theory of operation
-------------------
Nothing is downloaded: ``corpus(seed, ...)`` writes messages from three word pools -- words of
everyday work mail (ham), words of unsolicited offers (spam) and words both use -- so the
classes overlap as real mail does: every message takes most of its words from the shared pool
and its own class's pool, and some from the other class's pool. Senders come from a few
domains per class, spam is sometimes HTML only and sometimes has a subject in capitals, as real
junk is. The same seed gives the same corpus, byte for byte, apart from the Date, which is
``now`` so that no date heuristic fires.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime


def _pool(words: str) -> tuple[str, ...]:
    return tuple(words.split())


HAM_WORDS = _pool(
    "meeting agenda project schedule report review draft minutes budget quarterly team "
    "deadline proposal colleague presentation slides feedback thursday wednesday lunch "
    "conference office invoice attached contract client design release roadmap sprint "
    "milestone planning workshop notes summary calendar vacation training onboarding "
    "spreadsheet analysis estimate customer support ticket deployment server backup "
    "migration document signature approval manager department hiring interview"
)
SPAM_WORDS = _pool(
    "free offer winner prize casino lottery bonus discount cheap pills pharmacy viagra "
    "crypto bitcoin investment guaranteed income millionaire luxury replica watches "
    "unsubscribe limited exclusive congratulations claim reward cash loan credit approved "
    "urgent selected dating singles weight loss miracle clearance deal amazing risk "
    "satisfaction opportunity billion inheritance beneficiary wire transfer refund"
)
SHARED_WORDS = _pool(
    "the and you your please today this that with for have will from about more time "
    "information account update email message new now here next week need "
    "just know thanks regards best help details below contact team link access price"
)
HAM_DOMAINS = ("partner.test", "supplier.test", "university.test", "colleagues.test")
SPAM_DOMAINS = ("offers.test", "bestdeal.test", "promo-mail.test", "lucky.test", "win.test")
NAMES = ("anna", "ben", "carla", "dmitri", "eve", "farid", "gina", "hugo", "ines", "jon")


@dataclass(frozen=True, slots=True)
class Sample:
    spam: bool
    message_id: str
    sender: str
    raw: bytes


def _words(rng: random.Random, own: tuple[str, ...], other: tuple[str, ...], n: int) -> list[str]:
    out = []
    for _ in range(n):
        roll = rng.random()
        pool = SHARED_WORDS if roll < 0.45 else own if roll < 0.9 else other
        out.append(rng.choice(pool))
    return out


def _message(rng: random.Random, n: int, spam: bool, now: datetime) -> Sample:
    own, other = (SPAM_WORDS, HAM_WORDS) if spam else (HAM_WORDS, SPAM_WORDS)
    domain = rng.choice(SPAM_DOMAINS if spam else HAM_DOMAINS)
    sender = f"{rng.choice(NAMES)}@{domain}"
    subject = " ".join(_words(rng, own, other, rng.randint(3, 6))).capitalize()
    if spam and rng.random() < 0.2:
        subject = subject.upper()
    sentences = []
    for _ in range(rng.randint(4, 8)):
        sentences.append(" ".join(_words(rng, own, other, rng.randint(8, 16))).capitalize() + ".")
    text = " ".join(sentences)
    message_id = f"<corpus-{n}@{domain}>"
    head = (
        f"From: {sender.split('@')[0].title()} <{sender}>\r\n"
        "To: bob@b.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {format_datetime(now)}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
    )
    if spam and rng.random() < 0.3:
        body = f'<html><body><p>{text}</p><a href="http://{domain}/c">here</a></body></html>'
        head += "Content-Type: text/html; charset=utf-8\r\n"
    else:
        body = text
        head += "Content-Type: text/plain; charset=utf-8\r\n"
    return Sample(spam, message_id, sender, (head + "\r\n" + body + "\r\n").encode())


def corpus(seed: int, count: int, now: datetime, spam_share: float = 0.5) -> list[Sample]:
    """``count`` messages, about ``spam_share`` of them spam, in a seeded order."""
    rng = random.Random(seed)
    spam_count = round(count * spam_share)
    labels = [True] * spam_count + [False] * (count - spam_count)
    rng.shuffle(labels)
    return [_message(rng, n, spam, now) for n, spam in enumerate(labels)]
