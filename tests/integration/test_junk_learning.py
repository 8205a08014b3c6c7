"""The junk filter learns from a user's IMAP actions and then sorts new mail on port 25.

A seeded corpus (``courriel.testing.junkcorpus``) is delivered over SMTP (smtplib) to a real
server; the user, over IMAP (imaplib), moves the spam into Junk and marks the ham ``$NotJunk``
as Thunderbird does. A held-out part of the corpus is then delivered, and where each message
landed is read back over IMAP: precision and recall are printed (``pytest -s``) and held to a
floor.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.junk.tokens import digest
from courriel.testing.junkcorpus import Sample, corpus
from courriel.testing.server import Account, MailServer, start_server

SEED = 20261206
TRAIN = 100
HELD_OUT = 60


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MailServer]:
    s = start_server(tmp_path, extra_config="[junk]\nscoring = true\n")
    try:
        yield s
    finally:
        s.stop()


def deliver(server: MailServer, samples: list[Sample]) -> None:
    with smtplib.SMTP(server.host, server.port("smtp"), local_hostname="mx.sender.test") as s:
        for sample in samples:
            s.sendmail(sample.sender, ["bob@b.test"], sample.raw)


def imap(server: MailServer, account: Account) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(server.host, server.port("imaps"), ssl_context=server.ssl_context())
    client.login(account.address, account.password)
    return client


def ids_by_uid(client: imaplib.IMAP4_SSL, mailbox: str) -> dict[str, str]:
    """Message-ID -> UID of every message in the mailbox."""
    assert client.select(mailbox)[0] == "OK"
    _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    out: dict[str, str] = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        uid = re.search(rb"UID (\d+)", item[0])
        found = re.search(rb"<[^>]+>", item[1])
        if uid and found:
            out[found.group().decode()] = uid.group(1).decode()
    return out


def test_trained_by_imap_actions_it_sorts_held_out_mail(server: MailServer) -> None:
    bob = server.add_user("bob@b.test", "pw")
    samples = corpus(SEED, TRAIN + HELD_OUT, datetime.now(UTC))
    train, held_out = samples[:TRAIN], samples[TRAIN:]
    deliver(server, train)
    assert len(server.messages(bob, "INBOX")) == TRAIN  # an untrained filter files nothing
    with imap(server, bob) as client:
        uids = ids_by_uid(client, "INBOX")
        spam = ",".join(uids[s.message_id] for s in train if s.spam)
        ham = ",".join(uids[s.message_id] for s in train if not s.spam)
        assert client.uid("MOVE", spam, "Junk")[0] == "OK"  # into Junk: junk
        assert client.uid("STORE", ham, "+FLAGS", "($NotJunk)")[0] == "OK"  # not junk
    model = server.call(server.store.junk_model(bob.user_id, []))
    assert model.spam_messages == sum(s.spam for s in train)
    assert model.ham_messages == sum(not s.spam for s in train)

    deliver(server, held_out)
    with imap(server, bob) as client:
        in_junk = set(ids_by_uid(client, "Junk"))
    true_pos = sum(1 for s in held_out if s.spam and s.message_id in in_junk)
    false_pos = sum(1 for s in held_out if not s.spam and s.message_id in in_junk)
    false_neg = sum(1 for s in held_out if s.spam and s.message_id not in in_junk)
    precision = true_pos / max(true_pos + false_pos, 1)
    recall = true_pos / max(true_pos + false_neg, 1)
    print(
        f"\njunk filter on {len(held_out)} held-out messages after training on {len(train)}: "
        f"precision {precision:.2f} recall {recall:.2f} "
        f"(true positives {true_pos}, false positives {false_pos}, false negatives {false_neg})"
    )
    assert precision >= 0.9
    assert recall >= 0.7
    # Every held-out message was delivered, to one mailbox or the other: nothing dropped.
    total = len(server.messages(bob, "INBOX")) + len(server.messages(bob, "Junk"))
    assert total == TRAIN + HELD_OUT


def test_moving_out_of_junk_unlearns_and_trash_teaches_nothing(server: MailServer) -> None:
    bob = server.add_user("bob@b.test", "pw")
    samples = corpus(SEED + 1, 3, datetime.now(UTC))
    deliver(server, samples)
    with imap(server, bob) as client:
        uids = ids_by_uid(client, "INBOX")
        first, second, third = (uids[s.message_id] for s in samples)
        assert client.uid("COPY", f"{first},{second}", "Junk")[0] == "OK"  # a copy teaches too
        model = server.call(server.store.junk_model(bob.user_id, []))
        assert (model.ham_messages, model.spam_messages) == (0, 2)
        # The user changes their mind about one: out of Junk into INBOX is "not junk", and it
        # is unlearned as junk first, never counted as both.
        junk_uids = ids_by_uid(client, "Junk")
        assert client.uid("MOVE", junk_uids[samples[0].message_id], "INBOX")[0] == "OK"
        # Deleting from Junk says nothing about the message.
        assert client.uid("MOVE", junk_uids[samples[1].message_id], "Trash")[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
        assert client.uid("STORE", third, "+FLAGS", "($Junk)")[0] == "OK"  # Apple Mail's way
        assert client.uid("STORE", third, "+FLAGS", "($Junk)")[0] == "OK"  # again: once
    model = server.call(server.store.junk_model(bob.user_id, []))
    assert (model.ham_messages, model.spam_messages) == (1, 2)
    stored = server.bodies(bob, "INBOX")
    by_id = {
        str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]): raw
        for raw in stored
    }
    assert (
        server.call(server.store.junk_trained_as(bob.user_id, digest(by_id[samples[0].message_id])))
        is False
    )
    assert (
        server.call(server.store.junk_trained_as(bob.user_id, digest(by_id[samples[2].message_id])))
        is True
    )
