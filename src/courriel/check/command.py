"""``courriel check``: the command line of the client-side and the server-side checks.

Theory of operation
-------------------
``courriel check ADDRESS`` runs the client-side check (``client.run``) and ``courriel check
--server`` (no address) the server-side one (``server.report``) on the configuration and store
of this host. ``--server HOST`` with an address skips discovery and checks HOST instead, as the
issue that asked for the command spells it; the two meanings are told apart by the address.

Passwords never come from the command line: they are asked on the terminal without echo, or
read from standard input with ``--password-stdin`` (first line) and ``--to-password-stdin``
(the next line). The report is printed live, step by step, or as JSON at the end with
``--json``. A check with a failed step ends in an ``AdminError`` (exit status 1) after the
report, so scripts can use the status alone.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from courriel import config
from courriel.admin import AdminError, InputError
from courriel.check import client, render
from courriel.check.report import Report
from courriel.check.services import SERVICES
from courriel.config import Config
from courriel.store.base import Store

SERVER_SIDE = "\0server-side"  # --server given without a host
PORT_NAMES = (*SERVICES, "https")

StoreOp = Callable[[argparse.Namespace, Config, Store], Awaitable[None]]
StoreCommand = Callable[[StoreOp], Callable[[argparse.Namespace], int]]


def parse_ports(values: list[str]) -> dict[str, int]:
    """``imaps=10993,submission=10587`` (repeatable) as {service: port}."""
    out: dict[str, int] = {}
    for value in values:
        for item in value.split(","):
            name, _, port = item.strip().partition("=")
            if name not in PORT_NAMES:
                raise InputError(
                    f"--port: unknown service {name!r} (one of {', '.join(PORT_NAMES)})"
                )
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise InputError(f"--port: bad port in {item!r}")
            out[name] = int(port)
    return out


def _stdin_lines(count: int) -> list[str]:
    lines = []
    for _ in range(count):
        line = sys.stdin.buffer.readline()
        if not line:
            raise AdminError("not enough passwords on standard input (one per line)")
        lines.append(line.decode("utf-8", "replace").removesuffix("\n").removesuffix("\r"))
    return lines


def _ask(address: str) -> str:
    if not sys.stdin.isatty():
        raise InputError("no terminal to ask for the password; pipe it in with --password-stdin")
    return getpass.getpass(f"Password of {address}: ")


def _passwords(args: argparse.Namespace) -> tuple[str, str | None]:
    wanted = int(args.password_stdin) + int(args.to_password_stdin)
    piped = _stdin_lines(wanted) if wanted else []
    password = piped.pop(0) if args.password_stdin else _ask(args.address)
    other = None
    if args.to:
        other = piped.pop(0) if args.to_password_stdin else _ask(args.to)
    return password, other


def _client_side(args: argparse.Namespace) -> int:
    address = args.address
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise InputError(f"check: {address!r} is not an e-mail address")
    password, other = _passwords(args)
    opts = client.Options(
        address=address,
        password=password,
        server=None if args.server in (None, SERVER_SIDE) else args.server,
        ports=parse_ports(args.port or []),
        insecure=args.insecure,
        cafile=Path(args.cafile) if args.cafile else None,
        nameservers=args.dns or [],
        timeout=args.timeout,
        wait=args.wait,
        to=args.to,
        to_password=other,
        round_trip=not args.no_round_trip,
    )
    for ns in opts.nameservers:
        try:
            config.parse_nameserver(ns)
        except ValueError as e:
            raise InputError(f"--dns: {e}") from None

    def run(printer: render.LivePrinter | None) -> Report:
        if printer is None:
            return client.run(opts)
        return client.run(opts, printer, printer.starting)

    return _finish(args, run)


def _finish(args: argparse.Namespace, run: Callable[[render.LivePrinter | None], Report]) -> int:
    if args.json:
        report = run(None)
        print(render.as_json(report))
    else:
        print(f"courriel check: {args.address or 'this server'}", flush=True)
        report = run(render.LivePrinter(sys.stdout, tty=sys.stdout.isatty()))
        print(render.summary(report), end="", flush=True)
    if not report.passed:
        failed = sum(1 for s in report.problems() if s.status.value == "fail")
        raise AdminError(f"{failed} check(s) failed (see above)")
    return 0


def _server_side(store_command: StoreCommand) -> Callable[[argparse.Namespace], int]:
    async def op(args: argparse.Namespace, cfg: Config, store: Store) -> None:
        from courriel.check import server

        report = await server.report(
            cfg, store, nameservers=args.dns or None, step_seconds=args.timeout
        )
        print(
            render.as_json(report) if args.json else render.text(report),
            end="" if not args.json else "\n",
        )
        if not report.passed:
            failed = sum(1 for s in report.problems() if s.status.value == "fail")
            raise AdminError(f"{failed} check(s) failed (see above)")

    return store_command(op)


def add_command(
    top: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    store_command: StoreCommand,
) -> None:
    p = top.add_parser(
        "check",
        help="test a mail set-up end to end and explain each failure",
        description="courriel check ADDRESS tests a mailbox as a mail program would (any server); "
        "courriel check --server tests this courriel host (DNS, certificate, listeners, relay).",
        parents=[common],
    )
    p.add_argument("address", nargs="?", help="the e-mail address to test")
    p.add_argument(
        "--server",
        nargs="?",
        const=SERVER_SIDE,
        metavar="HOST",
        help="with ADDRESS: check HOST, skip discovery; alone: check this courriel server",
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--to", metavar="ADDRESS", help="also check delivery to this second mailbox")
    p.add_argument(
        "--to-password-stdin",
        action="store_true",
        help="read the --to mailbox's password from stdin (after --password-stdin's line)",
    )
    p.add_argument(
        "--port",
        action="append",
        metavar="SERVICE=PORT",
        help=f"use PORT for SERVICE ({', '.join(PORT_NAMES)}); repeat or separate with commas",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="go on with an untrusted certificate (still reported as a warning)",
    )
    p.add_argument("--cafile", metavar="PATH", help="trust this CA certificate too")
    p.add_argument(
        "--dns",
        action="append",
        metavar="ADDRESS[:PORT]",
        help="ask this DNS server (default: the system's; for --server, [dns] nameservers)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per step (default 10)")
    p.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for delivery (default 60)"
    )
    p.add_argument("--no-round-trip", action="store_true", help="do not send a test message")
    p.add_argument("--json", action="store_true", help="print the report as JSON at the end")
    server_side = _server_side(store_command)

    def handler(args: argparse.Namespace) -> int:
        if args.address is None:
            if args.server is None:
                raise InputError("check: give an ADDRESS, or --server to check this server")
            if args.server != SERVER_SIDE:
                raise InputError("check: --server HOST needs the ADDRESS to check")
            return server_side(args)
        return _client_side(args)

    p.set_defaults(handler=handler)
