"""``courriel check user@domain``: the whole client-side check, step by step.

Theory of operation
-------------------
``run`` finds the servers (``discovery``, or ``--server``), then for each mail service opens a
checked session and logs in (``services.Session``), looks at the domain's MX on port 25 as a
sending server would (connect, STARTTLS, certificate; no login), and finally runs the round trip
(``roundtrip``) when an IMAP or POP3 login and a submission login both worked. Every step goes
into one ``Report``; nothing here prints.

Ports given with ``--port SERVICE=PORT`` replace the discovered or standard ones (the https one
is where the autoconfig documents are asked for); a service named so must work. Without them,
a service only guessed (``--server``, or a usual host name) that refuses connections is shown as
not offered, not as a failure.
"""

from __future__ import annotations

import imaplib
import poplib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from courriel.check import discovery, explain, roundtrip
from courriel.check.lookup import DnsLookupError, Lookup
from courriel.check.report import Progress, Report, Starting
from courriel.check.services import SERVICES, Context, Session, Target

INCOMING = ("imaps", "imap", "pop3s", "pop3")
OUTGOING = ("submissions", "submission")


@dataclass
class Options:
    address: str
    password: str
    server: str | None = None
    ports: dict[str, int] = field(default_factory=dict)
    insecure: bool = False
    cafile: Path | None = None
    nameservers: list[str] = field(default_factory=list)
    timeout: float = 10.0
    wait: float = 60.0  # seconds the round trip waits for delivery
    to: str | None = None
    to_password: str | None = None
    round_trip: bool = True


def run(
    opts: Options, progress: Progress | None = None, starting: Starting | None = None
) -> Report:
    report = Report(f"courriel check {opts.address}")
    if progress is not None:
        report.progress = progress
    if starting is not None:
        report.starting = starting
    lookup = Lookup(opts.nameservers, timeout=opts.timeout)
    ctx = Context(report, lookup, opts.cafile, opts.insecure, opts.timeout)
    targets = _targets(ctx, opts, opts.address)
    working: dict[str, Target] = {}
    for service in (*INCOMING, *OUTGOING):
        target = targets.get(service)
        if target is None:
            continue
        session = Session(ctx, target)
        opened = session.open()
        if opened is not None and session.login(opened, opts.address, opts.password):
            session.close(opened)
            working[service] = target
    _require_one(report, targets, working)
    _mx(ctx, opts)
    if opts.round_trip:
        _round_trip(ctx, opts, working)
    return report


def _targets(ctx: Context, opts: Options, address: str) -> dict[str, Target]:
    if opts.server:
        found = {
            s: Target(s, opts.server, port, "--server", required=False)
            for s, (_, port, _) in SERVICES.items()
            if s != "smtp"
        }
        ctx.report.ok(discovery.SECTION, "--server", f"{opts.server}, standard ports")
    else:
        web = discovery.Web(
            ctx.lookup, ctx.cafile, ctx.insecure, ctx.timeout, opts.ports.get("https", 443)
        )
        found = discovery.discover(ctx.report, web, address)
    for service, port in opts.ports.items():
        if service in found:
            found[service] = replace(found[service], port=port, required=True)
        elif service in SERVICES and service != "smtp" and (opts.server or found):
            host = opts.server or next(iter(found.values())).host
            found[service] = Target(service, host, port, "--port", required=True)
    return found


def _require_one(report: Report, targets: dict[str, Target], working: dict[str, Target]) -> None:
    for services, why, what in (
        (INCOMING, explain.NO_INCOMING, "incoming mail"),
        (OUTGOING, explain.NO_OUTGOING, "sending mail"),
    ):
        if any(s in working for s in services):
            continue
        if any(targets[s].required for s in services if s in targets):
            continue  # that service's own failure is in the report already
        tried = [s for s in services if s in targets]
        detail = "none of " + ", ".join(tried) + " answered" if tried else "no server found"
        report.fail("summary", what, why, detail)


def _mx(ctx: Context, opts: Options) -> None:
    domain = opts.address.rpartition("@")[2]
    section = f"MX of {domain}"
    start = time.monotonic()
    try:
        exchanges = ctx.lookup.mx(domain)
    except DnsLookupError as e:
        ctx.report.fail(section, "MX record", explain.NO_MX, f"no answer from DNS: {e}")
        return
    if not exchanges:
        ctx.report.fail(section, "MX record", explain.NO_MX, f"{domain} has no MX record")
        return
    shown = ", ".join(f"{p} {h}" for p, h in exchanges)
    ctx.report.ok(section, "MX record", shown, time.monotonic() - start)
    host = exchanges[0][1]
    port = opts.ports.get("smtp", 25)
    session = Session(ctx, Target("smtp", host, port, f"MX of {domain}"))
    opened = session.open()
    if opened is not None:
        session.close(opened)


def _first(working: dict[str, Target], services: tuple[str, ...]) -> Target | None:
    return next((working[s] for s in services if s in working), None)


def _round_trip(ctx: Context, opts: Options, working: dict[str, Target]) -> None:
    imap = _first(working, ("imaps", "imap"))
    pop3 = _first(working, ("pop3s", "pop3"))
    submission = _first(working, OUTGOING)
    if submission is None or (imap is None and pop3 is None):
        ctx.report.skip(
            roundtrip.SECTION, "round trip", "needs a working submission and IMAP or POP3 login"
        )
        return
    recipients = [opts.address] + ([opts.to] if opts.to else [])
    message = roundtrip.make_message(opts.address, recipients)
    box = None if imap is None else roundtrip.open_mailbox(ctx, imap, opts.address, opts.password)
    other = None
    if opts.to and opts.to_password is not None:
        other_imap = _other_imap(ctx, opts, imap)
        if other_imap is not None:
            other = roundtrip.open_mailbox(ctx, other_imap, opts.to, opts.to_password)
    try:
        _exchange(ctx, opts, message, recipients, box, other, submission, pop3)
    except (OSError, EOFError, imaplib.IMAP4.error, poplib.error_proto) as e:
        # The server went away in the middle: say so, and still try to clean up.
        ctx.report.fail(roundtrip.SECTION, "round trip", explain.CLOSED_EARLY, str(e))
    finally:
        if box is not None:
            box.close()
        if other is not None:
            other.close()
        if imap is not None:
            _clean_up(ctx, imap, opts.address, opts.password, message)


def _exchange(
    ctx: Context,
    opts: Options,
    message: roundtrip.TestMessage,
    recipients: list[str],
    box: roundtrip.Mailbox | None,
    other: roundtrip.Mailbox | None,
    submission: Target,
    pop3: Target | None,
) -> None:
    """Send, then wait for the message wherever it should arrive."""
    if box is not None:
        box.start_idle()
    sent = roundtrip.send(ctx, submission, opts.address, opts.password, recipients, message)
    if sent is None:
        return
    deadline = sent + opts.wait
    if box is not None:
        roundtrip.wait_imap(ctx, box, message, sent, deadline, opts.address)
    if pop3 is not None:
        roundtrip.check_pop3(ctx, pop3, opts.address, opts.password, message, sent, deadline)
    if opts.to is not None and other is not None:
        arrival = roundtrip.wait_imap(ctx, other, message, sent, deadline, opts.to, bounces_to=box)
        if arrival is not None:
            other.delete(arrival.uids)
    elif opts.to is not None and box is not None:
        ctx.report.skip(
            roundtrip.SECTION,
            f"{opts.to}'s mailbox",
            "could not be opened (see above): only a bounce can show a failed delivery",
        )
        roundtrip.wait_bounce(ctx, box, message, sent, deadline, opts.to)


def _other_imap(ctx: Context, opts: Options, imap: Target | None) -> Target | None:
    assert opts.to is not None
    same = opts.to.rpartition("@")[2] == opts.address.rpartition("@")[2]
    if (same or opts.server) and imap is not None:
        return imap
    found = _targets(ctx, opts, opts.to)
    return found.get("imaps") or found.get("imap")


def _clean_up(
    ctx: Context, imap: Target, user: str, password: str, message: roundtrip.TestMessage
) -> None:
    box = roundtrip.open_mailbox(ctx, imap, user, password)
    if box is None:
        return
    try:
        own, bounces = box.search(message)
        box.delete(own + bounces)
        left, _ = box.search(message)
    except (OSError, EOFError, imaplib.IMAP4.error) as e:
        ctx.report.fail(roundtrip.SECTION, "clean up", explain.CLEANUP_FAILED, str(e))
        return
    finally:
        box.close()
    if left:
        ctx.report.fail(roundtrip.SECTION, "clean up", explain.CLEANUP_FAILED, f"{len(left)} left")
    else:
        ctx.report.ok(roundtrip.SECTION, "clean up", f"deleted the test message {message.token}")
