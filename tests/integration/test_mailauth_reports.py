"""The DMARC reporter as the server runs it: evaluations recorded on an earlier day are reported
when a worker starts, to a local destination (stored at once) and a remote one (through the
queue), and then forgotten."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from courriel.mail.auth.dmarc_report import Evaluation
from courriel.store.base import Store
from courriel.store.open import open_store
from courriel.testing.fill import add_user
from courriel.testing.transcript import make_test_config, running_server
from courriel.testing.transports import ScriptedTransport

YESTERDAY = int(time.time()) // 86400 * 86400 - 43200


async def prepare(store: Store) -> None:
    await add_user(store, "dmarc@example.org", "secret")
    e = Evaluation(
        received=YESTERDAY, policy_domain="example.org", source_ip="203.0.113.9",
        header_from="example.org", envelope_from="example.org", envelope_to="example.org",
        disposition="reject", dkim_aligned=False, spf_aligned=False,
        spf=("example.org", "mfrom", "fail"), published={"p": "reject", "sp": "reject"},
        rua=("mailto:dmarc@example.org", "mailto:reports@agg.example.org"),
    )  # fmt: skip
    await store.add_dmarc_evaluation(e.policy_domain, e.received, e.to_json())


def report_name(raw: bytes) -> str:
    parts: list[Message] = [p for p in message_from_bytes(raw).walk() if p.get_filename()]
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes) and b"<source_ip>203.0.113.9</source_ip>" in gzip.decompress(
        payload
    )
    return str(parts[0].get_filename())


async def test_a_worker_sends_yesterdays_reports(tmp_path: Path) -> None:
    cfg = make_test_config(tmp_path / "data", tmp_path / "tls", ["smtp"])
    cfg = dataclasses.replace(cfg, mailauth=dataclasses.replace(cfg.mailauth, check_inbound=True))
    store = await open_store(cfg)
    try:
        await prepare(store)
    finally:
        await store.close()
    transport = ScriptedTransport()
    async with running_server(cfg, transport=transport) as running:
        s = running.app.store
        user = await s.get_user("dmarc@example.org")
        assert user is not None
        inbox = await s.get_mailbox(user.id, "INBOX")
        assert inbox is not None
        for _ in range(100):
            if transport.calls and (await s.mailbox_status(inbox.id)).messages:
                break
            await asyncio.sleep(0.05)
        [info] = await s.list_messages(inbox.id)
        local = await s.read_message(inbox.id, info.uid)
        left = await s.dmarc_evaluations("example.org", before=2**40, limit=10)
    begin = YESTERDAY // 86400 * 86400
    name = f"{cfg.hostname}!example.org!{begin}!{begin + 86399}.xml.gz"
    assert report_name(local) == name
    [call] = transport.calls
    assert [r.address for r in call.message.recipients] == ["reports@agg.example.org"]
    assert left == []
