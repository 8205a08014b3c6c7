"""The round trip: send a test message to yourself, see it arrive over IMAP and POP3, clean up.

Theory of operation
-------------------
1. An IMAP session (the first implicit-TLS one that works, else STARTTLS) logs in, selects INBOX
   and, when the server offers IDLE (RFC 2177), starts idling *before* the message is sent, so
   the time from the submission server's 250 to the untagged EXISTS is the push delay a phone
   would see. Without IDLE the check polls with SEARCH.
2. The message goes out through submission with a login. It carries a unique token in its
   Subject and Message-ID, so finding it never depends on anything else in the mailbox; a
   refusal (MAIL, RCPT or DATA) is explained from the reply (``explain.from_smtp_reply``).
3. Waiting ends when ``UID SEARCH HEADER Message-ID`` finds it, when a bounce that quotes the
   token arrives instead (its Diagnostic-Code is explained like a refusal), or at the deadline.
4. POP3, when offered, must list the message too (TOP of the newest messages); it is deleted
   there (DELE, QUIT), then whatever is left over IMAP (STORE \\Deleted, EXPUNGE).
5. ``--to`` adds a second recipient and a second IMAP login to its mailbox: "the second
   device". Its copy is waited for and deleted the same way.

IDLE reads block on the socket with the time left as its timeout; a socket file that timed out
cannot be read again (``socket.SocketIO``), so a session that ran out of time is closed, not
reused, and the clean-up opens a new one.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import smtplib
import time
from dataclasses import dataclass
from email.utils import format_datetime, localtime

from courriel.check import explain
from courriel.check.protocols import ImapClient, Pop3Client, SmtpClient
from courriel.check.services import Context, Opened, Session, Target

SECTION = "round trip"
POLL_SECONDS = 0.25
POP3_SCAN = 50  # newest messages looked at over POP3


@dataclass(frozen=True, slots=True)
class TestMessage:
    token: str
    message_id: str
    raw: bytes


def make_message(sender: str, recipients: list[str]) -> TestMessage:
    token = "check-" + secrets.token_hex(8)
    domain = sender.rpartition("@")[2]
    message_id = f"<{token}@{domain}>"
    raw = (
        f"From: {sender}\r\n"
        f"To: {', '.join(recipients)}\r\n"
        f"Subject: courriel check {token}\r\n"
        f"Date: {format_datetime(localtime())}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "This message was sent by courriel check to test delivery.\r\n"
        "It is deleted when the check ends; if you see it, the clean-up did not run.\r\n"
    ).encode()
    return TestMessage(token, message_id, raw)


# --- IMAP -----------------------------------------------------------------------------------------


class MailboxError(Exception):
    pass


class Mailbox:
    """A logged-in IMAP session on INBOX, watching for the test message."""

    def __init__(self, session: Session, opened: Opened) -> None:
        self.session = session
        self.opened = opened
        self.client: ImapClient = opened.client
        self.alive = True
        typ, _ = self.client.select("INBOX")
        if typ != "OK":
            raise MailboxError(f"SELECT INBOX answered {typ}")
        # Servers may list more once logged in (RFC 9051 §6.2.3), and IDLE is often among them.
        typ, data = self.client.capability()
        caps = data[0].decode("ascii", "replace").upper().split() if typ == "OK" and data else []
        self.idle = "IDLE" in caps or "IDLE" in self.client.capabilities
        self._idle_tag: bytes | None = None

    @property
    def idling(self) -> bool:
        return self._idle_tag is not None

    def start_idle(self) -> bool:
        if not self.idle:
            return False
        tag = self.client._new_tag()
        self.client.send(tag + b" IDLE\r\n")
        line = self.client.readline()
        if not line.startswith(b"+"):  # RFC 2177 §3: a continuation, then updates
            self.idle = False
            return False
        self._idle_tag = tag
        return True

    def wait_exists(self, deadline: float) -> bool:
        """While idling: True on an untagged EXISTS before ``deadline``."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.client.sock.settimeout(left)
            try:
                line = self.client.readline()
            except (TimeoutError, OSError):
                self.alive = False
                return False
            if not line:
                self.alive = False
                return False
            if re.match(rb"\* \d+ EXISTS", line):
                return True

    def stop_idle(self, timeout: float) -> None:
        tag, self._idle_tag = self._idle_tag, None
        if tag is None or not self.alive:
            return
        self.client.sock.settimeout(timeout)
        self.client.send(b"DONE\r\n")
        while not (line := self.client.readline()).startswith(tag):
            if not line:
                self.alive = False
                return

    def _uids(self, *criteria: str) -> list[str]:
        typ, data = self.client.uid("SEARCH", *criteria)
        return data[0].decode().split() if typ == "OK" and data and data[0] else []

    def search(self, message: TestMessage) -> tuple[list[str], list[str]]:
        """(UIDs of the message, UIDs of bounces quoting it)."""
        own = self._uids("HEADER", "Message-ID", message.message_id)
        quoting = self._uids("BODY", message.token)
        return own, [u for u in quoting if u not in own]

    def bounce_reason(self, uid: str) -> str:
        _, data = self.client.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = b"".join(part[1] for part in data if isinstance(part, tuple))
        text = raw.decode("utf-8", "replace")
        m = re.search(r"^Diagnostic-Code:\s*smtp;\s*(.+(?:\r?\n[ \t].+)*)", text, re.M | re.I)
        if m:  # RFC 3464 §2.3.6
            return " ".join(m.group(1).split())
        m = re.search(r"\b([45]\d\d[ -][245]\.\d+\.\d+.*)$", text, re.M)
        return m.group(1).strip() if m else "no reason given in the bounce"

    def delete(self, uids: list[str]) -> None:
        if uids:
            self.client.uid("STORE", ",".join(uids), "+FLAGS.SILENT", r"(\Deleted)")
            self.client.expunge()

    def close(self) -> None:
        with contextlib.suppress(OSError, ImapClient.error):
            self.stop_idle(self.session.ctx.timeout)
        if self.alive:
            self.session.close(self.opened)
        else:
            with contextlib.suppress(OSError):
                self.client.shutdown()


def open_mailbox(ctx: Context, target: Target, user: str, password: str) -> Mailbox | None:
    session = Session(ctx, target)
    opened = session.open(quiet=True)
    if opened is None or not session.login(opened, user, password, quiet=True):
        return None
    try:
        return Mailbox(session, opened)
    except (MailboxError, OSError, ImapClient.error) as e:
        ctx.report.fail(SECTION, f"open INBOX of {user}", explain.PROTOCOL_ERROR, str(e))
        session.close(opened)
        return None


# --- sending --------------------------------------------------------------------------------------


def send(
    ctx: Context,
    target: Target,
    user: str,
    password: str,
    recipients: list[str],
    message: TestMessage,
) -> float | None:
    """Submits ``message``; the monotonic time of the final 250, or None (reported)."""
    session = Session(ctx, target)
    opened = session.open(quiet=True)
    if opened is None or not session.login(opened, user, password, quiet=True):
        return None
    client: SmtpClient = opened.client
    start = time.monotonic()
    name = f"send via {target.service} {target.host}:{target.port}"
    try:
        refused = client.sendmail(user, recipients, message.raw)
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        _refused(ctx, name, code, text, start)
        return None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
        _refused(ctx, name, e.smtp_code, e.smtp_error, start)
        return None
    except (smtplib.SMTPException, OSError) as e:
        ctx.report.fail(SECTION, name, explain.CLOSED_EARLY, str(e), time.monotonic() - start)
        return None
    finally:
        session.close(opened)
    sent = time.monotonic()
    if refused:
        rcpt, (code, text) = next(iter(refused.items()))
        _refused(ctx, name, code, text, start, f"{rcpt}: ")
        return None
    ctx.report.ok(SECTION, name, f"accepted for {', '.join(recipients)}", sent - start)
    return sent


def _refused(
    ctx: Context, name: str, code: int, text: bytes | str, start: float, prefix: str = ""
) -> None:
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    why = explain.from_smtp_reply(code, reply)
    ctx.report.fail(SECTION, name, why, f"{prefix}{code} {reply}", time.monotonic() - start)


# --- waiting --------------------------------------------------------------------------------------


@dataclass
class Arrival:
    uids: list[str]
    seconds: float
    pushed: bool  # noticed through IDLE


def wait_imap(
    ctx: Context,
    box: Mailbox,
    message: TestMessage,
    sent: float,
    deadline: float,
    who: str,
    bounces_to: Mailbox | None = None,
) -> Arrival | None:
    """Waits for the message in ``box``; reports arrival, a bounce, or the time running out.

    Bounces come back to the sender: ``bounces_to`` is the sender's mailbox when ``box`` is
    another one (then both are polled; IDLE can watch one mailbox only).
    """
    ctx.report.begin(SECTION, f"waiting for delivery to {who}")
    pushed = False
    while True:
        if box.idling:
            noticed = box.wait_exists(deadline)
            if not box.alive:
                break
            box.stop_idle(ctx.timeout)
            pushed = noticed
        else:
            box.client.noop()
        arrived = time.monotonic()
        own, bounces = box.search(message)
        bounce_box = box
        if bounces_to is not None:
            bounces_to.client.noop()
            _, bounces = bounces_to.search(message)
            bounce_box = bounces_to
        if own:
            how = "pushed by IDLE" if pushed else "found by polling"
            seconds = arrived - sent
            ctx.report.ok(
                SECTION, f"arrived in {who}'s INBOX", f"{how} after {seconds:.2f} s", seconds
            )
            if not box.idle and bounces_to is None:
                ctx.report.warn(SECTION, "push (IDLE)", explain.NO_PUSH, "IDLE is not offered")
            return Arrival(own, seconds, pushed)
        if bounces:
            _bounced(ctx, bounce_box, bounces, who, arrived - sent)
            return None
        if time.monotonic() >= deadline:
            break
        if bounces_to is not None or not box.start_idle():
            time.sleep(POLL_SECONDS)
    ctx.report.fail(
        SECTION,
        f"delivery to {who}",
        explain.NOT_DELIVERED,
        f"not in INBOX {time.monotonic() - sent:.1f} s after it was accepted",
        time.monotonic() - sent,
    )
    return None


def wait_bounce(
    ctx: Context, box: Mailbox, message: TestMessage, sent: float, deadline: float, who: str
) -> None:
    """For a recipient whose mailbox the check cannot open: only a bounce can tell."""
    while time.monotonic() < deadline:
        box.client.noop()
        _, bounces = box.search(message)
        if bounces:
            _bounced(ctx, box, bounces, who, time.monotonic() - sent)
            return
        time.sleep(POLL_SECONDS)
    ctx.report.ok(
        SECTION,
        f"delivery to {who}",
        f"no bounce came back within {time.monotonic() - sent:.0f} s (the mailbox itself "
        "was not looked at)",
    )


def _bounced(ctx: Context, box: Mailbox, uids: list[str], who: str, seconds: float) -> None:
    reason = box.bounce_reason(uids[0])
    why = explain.from_smtp_reply(_code(reason), reason)
    if why in (explain.SEND_REFUSED, explain.TEMPORARY_REFUSAL):
        why = explain.BOUNCED
    ctx.report.fail(SECTION, f"delivery to {who}", why, f"bounce: {reason}", seconds)
    box.delete(uids)


def _code(reason: str) -> int:
    m = re.match(r"\s*([245]\d\d)\b", reason)
    return int(m.group(1)) if m else 550


def check_pop3(
    ctx: Context,
    target: Target,
    user: str,
    password: str,
    message: TestMessage,
    sent: float,
    deadline: float,
) -> None:
    """The message must be listed over POP3 too; it is deleted there (DELE, QUIT)."""
    name = f"listed over POP3 {target.host}:{target.port}"
    while True:
        session = Session(ctx, target)
        opened = session.open(quiet=True)
        if opened is None or not session.login(opened, user, password, quiet=True):
            return
        client: Pop3Client = opened.client
        try:
            number = _pop3_find(client, message)
            if number is not None:
                client.dele(number)
                seen = time.monotonic() - sent
                ctx.report.ok(SECTION, name, f"seen {seen:.2f} s after it was accepted", seen)
                return
        finally:
            session.close(opened)  # QUIT: the DELE takes effect (RFC 1939 §6)
        if time.monotonic() >= deadline:
            ctx.report.fail(SECTION, name, explain.NOT_DELIVERED, "not listed over POP3")
            return
        time.sleep(POLL_SECONDS)


def _pop3_find(client: Pop3Client, message: TestMessage) -> int | None:
    count, _ = client.stat()
    needle = message.message_id.encode()
    for number in range(count, max(0, count - POP3_SCAN), -1):
        _, lines, _ = client.top(number, 0)
        if any(needle in line for line in lines):
            return number
    return None
