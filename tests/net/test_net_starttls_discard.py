"""STARTTLS with commands pipelined behind it: one rule for every protocol (net/driver.py).

The transcripts under tests/transcripts/*/starttls-pipelined-command-discarded.txt (and the
POP3 STLS one) play the conversation: the go-ahead, the handshake, no reply to the pipelined
command inside TLS, and a session that goes on. Here the same conversations are played once
more to check what the log says: how many bytes sent in clear were thrown away.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from courriel.testing.transcript import run_transcript

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "transcripts"
CASES = [
    (
        "smtp/starttls-pipelined-command-discarded.txt",
        b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<alice@example.test>\r\n",
    ),
    ("imap/starttls-pipelined-command-discarded.txt", b"a2 LOGIN alice@example.test secret\r\n"),
    ("pop3/stls-pipelined-command-discarded.txt", b"CAPA\r\n"),
    ("managesieve/starttls-pipelined-command-discarded.txt", b'NOOP "injected"\r\n'),
]


# Over a loopback socket, where the kernel and asyncio buffer the clear text, and over memory.
@pytest.mark.parametrize("loopback", [True, False], ids=["loopback", "memory"])
@pytest.mark.parametrize(("name", "injected"), CASES, ids=[c[0].split("/")[0] for c in CASES])
async def test_discarded_clear_text_is_counted_in_the_log(
    name: str,
    injected: bytes,
    loopback: bool,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="courriel")
    await run_transcript(TRANSCRIPTS / name, tmp_path, tmp_path / "tls-certs", loopback=loopback)
    said = [r.getMessage() for r in caplog.records if "after STARTTLS" in r.getMessage()]
    assert said == [f"{len(injected)} bytes sent in clear after STARTTLS were discarded"]
