"""CPU time of the sans-IO SMTP core per message: EHLO, MAIL, RCPT, DATA, the message, QUIT.

Run: ``.venv/bin/python bench/smtp_core.py [--rounds N]``. Only the core is measured (no
sockets, no storage): the client bytes are fed in the reads a real connection would see (the
commands pipelined in one read, the message in 64 KB reads), and the session answers every
event with a fixed reply. The figure is process CPU time per whole session, best of five runs.
"""

from __future__ import annotations

import argparse
import time

from courriel.wire.smtp import (
    Closed,
    Data,
    Ehlo,
    MessageData,
    NeedData,
    Quit,
    SmtpConfig,
    SmtpConnection,
)
from courriel.wire.smtp import replies as r

READ = 65536


def make_message(size: int) -> bytes:
    """A plausible text message of about ``size`` octets, some lines needing dot-stuffing."""
    head = b"From: a@example.net\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n"
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
    body = bytearray(head)
    n = 0
    while len(body) < size:
        body += b"." + line if n % 20 == 0 else line
        n += 1
    return bytes(body) + b".\r\n"


def one_session(config: SmtpConfig, reads: list[bytes]) -> int:
    conn = SmtpConnection(config)
    conn.greeting()
    delivered = 0
    for data in reads:
        conn.receive_data(data)
        while True:
            event = conn.next_event()
            if isinstance(event, NeedData | Closed):
                break
            if isinstance(event, Ehlo):
                conn.send(conn.ehlo_reply())
            elif isinstance(event, Data):
                conn.send(r.START_DATA)
            elif isinstance(event, MessageData):
                delivered += len(event.message)
                conn.send(r.QUEUED)
            elif isinstance(event, Quit):
                conn.send(r.BYE)
            else:
                conn.send(r.OK)
    return delivered


def measure(size: int, rounds: int) -> float:
    """Best-of-five CPU seconds per session."""
    config = SmtpConfig(hostname="mx.example.org", max_message_bytes=1 << 20)
    message = make_message(size)
    envelope = b"EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    reads = [envelope] + [message[i : i + READ] for i in range(0, len(message), READ)]
    reads.append(b"QUIT\r\n")
    assert one_session(config, reads) > 0
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(rounds):
            one_session(config, reads)
        best = min(best, (time.process_time() - start) / rounds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    for size in (4 * 1024, 64 * 1024):
        per = measure(size, args.rounds)
        print(f"{size // 1024:>3} KB message: {per * 1e6:7.1f} µs CPU per session")


if __name__ == "__main__":
    main()
