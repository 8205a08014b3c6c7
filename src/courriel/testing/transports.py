"""A transport for tests of the queue: records each call and answers what the test scripted.

Theory of operation
-------------------
The queue worker's tests examine the worker (what it leases, groups, records, retries and
reports), not the way a message crosses the network, so they stand the ``Transport`` interface
in with ``ScriptedTransport``: for each recipient address the test gives a list of statuses (or
whole ``Outcome`` values), one per attempt, the last one repeating; unknown addresses are
delivered. Every call is kept in ``calls`` with the time it was made, so a test can check the
grouping by domain and the schedule. ``gate`` lets a test hold deliveries in flight.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field

from courriel.queue.transport import OutboundMessage, Outcome, Status

REMOTE = "mx.example.net [192.0.2.25]"
REPLIES = {
    Status.DELIVERED: (250, "2.0.0", "2.0.0 Ok: queued as 4XyZ"),
    Status.TEMPORARY: (451, "4.7.1", "4.7.1 Greylisted, please try again later"),
    Status.PERMANENT: (550, "5.1.1", "5.1.1 <{rcpt}>: Recipient address rejected: User unknown"),
}


def reply(status: Status, rcpt: str) -> Outcome:
    code, enhanced, text = REPLIES[status]
    return Outcome(rcpt, status, text.format(rcpt=rcpt), code, enhanced, REMOTE)


@dataclass
class Call:
    domain: str
    message: OutboundMessage


@dataclass
class ScriptedTransport:
    script: dict[str, list[Status | Outcome]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set by the test, held deliveries go on
    called: asyncio.Event = field(default_factory=asyncio.Event)  # set at every call
    closed: bool = False
    in_flight: int = 0
    most_in_flight: int = 0

    def attempts(self, address: str) -> int:
        return sum(1 for c in self.calls for r in c.message.recipients if r.address == address)

    async def deliver(self, domain: str, message: OutboundMessage) -> Sequence[Outcome]:
        self.calls.append(Call(domain, message))
        self.called.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            out = []
            for r in message.recipients:
                steps = self.script.get(r.address, [Status.DELIVERED])
                step = steps.pop(0) if len(steps) > 1 else steps[0]
                out.append(step if isinstance(step, Outcome) else reply(step, r.address))
            return out
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        self.closed = True


class SmtplibTransport:
    """Delivers every domain's mail to one SMTP server over loopback, with Python's smtplib.

    A stand-in for the real transport in tests of the whole server: the message really crosses
    a socket to a real receiving server (another courriel, say), whose replies become the
    outcomes: a refused connection or a 4xx is temporary, a 5xx permanent. No TLS, no MX.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.calls = 0

    async def deliver(self, domain: str, message: OutboundMessage) -> Sequence[Outcome]:
        self.calls += 1
        return await asyncio.to_thread(self._send, message)

    async def close(self) -> None:
        return None

    def _send(self, m: OutboundMessage) -> list[Outcome]:
        where = f"{self.host} [{self.host}]"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as s:
                s.ehlo("relay.example.test")
                code, text = s.mail(m.sender)
                if code >= 400:
                    return [_answer(r.address, code, text, where) for r in m.recipients]
                answers = {r.address: s.rcpt(r.address) for r in m.recipients}
                accepted = [a for a, (code, _) in answers.items() if code < 400]
                if accepted:
                    code, text = s.data(m.message)
                    answers.update(dict.fromkeys(accepted, (code, text)))
                return [_answer(a, c, t, where) for a, (c, t) in answers.items()]
        except smtplib.SMTPResponseException as e:
            return [_answer(r.address, e.smtp_code, e.smtp_error, where) for r in m.recipients]
        except OSError as e:
            why = f"cannot connect to {self.host} port {self.port}: {e.strerror or e}"
            return [Outcome(r.address, Status.TEMPORARY, why) for r in m.recipients]


def _answer(address: str, code: int, text: bytes | str, where: str) -> Outcome:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    enhanced = words.split(" ", 1)[0] if words[:1].isdigit() and "." in words[:6] else ""
    status = (
        Status.DELIVERED if code < 400 else Status.TEMPORARY if code < 500 else Status.PERMANENT
    )
    return Outcome(address, status, words, code, enhanced, where)
