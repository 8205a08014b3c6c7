"""``courriel dkim rotate|list`` and ``courriel dns DOMAIN [--json|--zone] [--check]``.

Theory of operation
-------------------
``add_commands`` puts the two commands on the parser ``courriel.cli`` builds, and is handed
its ``store_command`` wrapper (open the store, run one operation, close it), so this module
does not import ``courriel.cli`` and the two stay free of an import cycle. The operations are
``courriel.admin_dkim`` (keys) and ``courriel.dnsrecords`` (what to publish, and the check);
this module only prints.

``dns --check`` asks ``--nameserver`` (an address, optionally ``:port``), else the servers of
``[dns] nameservers``, else the system's; a record missing or wrong ends it with status 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from courriel import admin_dkim, dnsrecords
from courriel.admin import AdminError, InputError, domain_name
from courriel.auth_resolver import AuthResolver
from courriel.config import Config
from courriel.store.base import DkimKey, Store

StoreOp = Callable[[argparse.Namespace, Config, Store], Awaitable[None]]
StoreCommand = Callable[[StoreOp], Callable[[argparse.Namespace], int]]


# --- dkim -----------------------------------------------------------------------------------------


def _print_records(records: Sequence[dnsrecords.Record]) -> None:
    for r in records:
        print(f"{r.name}. IN {r.type} {dnsrecords.zone_value(r)}")


async def _dkim_rotate(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    if args.grace_days < 0:
        raise InputError("the grace period cannot be negative")
    keys = await admin_dkim.rotate(store, args.domain, grace=timedelta(days=args.grace_days))
    old = [k for k in await store.dkim_keys(keys[0].domain) if k.state.value == "retiring"]
    print(f"new DKIM keys of {keys[0].domain}: {', '.join(k.selector for k in keys)}")
    if old:
        until = max(k.retire_after for k in old if k.retire_after is not None)
        print(f"the old selectors stay published until {until:%Y-%m-%d %H:%M} UTC:")
        print("  " + ", ".join(k.selector for k in old))
    print("publish these records now (courriel signs with the new keys from now on):")
    _print_records(_dkim_records(keys))


def _dkim_records(keys: Sequence[DkimKey]) -> list[dnsrecords.Record]:
    out = []
    for k in keys:
        name, value = admin_dkim.record_of(k)
        out.append(
            dnsrecords.Record(name, "TXT", value, f"DKIM public key for selector {k.selector}")
        )
    return out


async def _dkim_list(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    rows = [("DOMAIN", "SELECTOR", "ALGORITHM", "STATE", "CREATED", "RETIRE AFTER")]
    for k in await admin_dkim.list_keys(store, args.domain):
        retire = "-" if k.retire_after is None else f"{k.retire_after:%Y-%m-%d}"
        rows.append(
            (k.domain, k.selector, k.algorithm, k.state.value, f"{k.created:%Y-%m-%d}", retire)
        )
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


# --- dns ------------------------------------------------------------------------------------------


async def records_of(cfg: Config, store: Store, domain: str) -> list[dnsrecords.Record]:
    alabel = domain_name(domain)
    if await store.get_domain(alabel) is None:
        raise AdminError(f"unknown domain {alabel}")
    keys = admin_dkim.published(await store.dkim_keys(alabel))
    return dnsrecords.records_for(
        alabel,
        cfg.hostname,
        [admin_dkim.record_of(k) for k in keys],
        cfg.listeners,
        self_signed=not cfg.tls.cert,
        mtasts=cfg.mtasts,
    )


def _resolver(args: argparse.Namespace, cfg: Config) -> AuthResolver:
    # "host", "host:port" or "[v6]:port", as [dns] nameservers takes them.
    servers = args.nameserver or cfg.dns.nameservers
    return AuthResolver(servers, timeout=cfg.dns.timeout_seconds)


async def _dns(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    records = await records_of(cfg, store, args.domain)
    if args.check:
        await _check(args, cfg, records)
    elif args.json:
        print(json.dumps(_json(cfg, records), indent=2))
    elif args.zone:
        print(dnsrecords.zone(records), end="")
    else:
        _text(cfg, records)


def _json(cfg: Config, records: Sequence[dnsrecords.Record]) -> dict[str, Any]:
    return {
        "domain": records[0].name,
        "hostname": cfg.hostname,
        "records": [
            {"name": r.name, "type": r.type, "value": r.value, "purpose": r.purpose}
            for r in records
        ],
        "mta_sts_policy": dnsrecords.mta_sts_policy(cfg.hostname, not cfg.tls.cert, cfg.mtasts),
    }


def _text(cfg: Config, records: Sequence[dnsrecords.Record]) -> None:
    domain = records[0].name
    print(f"DNS records for {domain} (mail host {cfg.hostname}):\n")
    for r in records:
        print(f"{r.type:<6} {r.name}\n       {dnsrecords.zone_value(r)}\n       ({r.purpose})")
    print(f"\nMTA-STS policy, served at https://mta-sts.{domain}/.well-known/mta-sts.txt:")
    for line in dnsrecords.mta_sts_policy(cfg.hostname, not cfg.tls.cert, cfg.mtasts).splitlines():
        print(f"  {line}")


async def _check(
    args: argparse.Namespace, cfg: Config, records: Sequence[dnsrecords.Record]
) -> None:
    resolver = _resolver(args, cfg)
    findings = await dnsrecords.check(records, resolver)
    for f in findings:
        line = f"{f.status.value:<8} {f.record.type:<5} {f.record.name}"
        print(line + (f": {f.advice}" if f.advice else ""))
    reverse = await dnsrecords.check_reverse(cfg.hostname, resolver)
    for status, problem in reverse:
        print(f"{status.value:<8} PTR   {problem}")
    if not reverse:
        print(f"{'OK':<8} PTR   {cfg.hostname} (forward-confirmed reverse DNS)")
    bad = sum(f.status is not dnsrecords.Status.OK for f in findings) + len(reverse)
    if bad:
        raise AdminError(f"{bad} of {len(findings) + 1} DNS checks need attention (see above)")


# --- the command line -----------------------------------------------------------------------------


def add_commands(
    top: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    store_command: StoreCommand,
) -> None:
    dkim = top.add_parser("dkim", help="DKIM signing keys", parents=[common])
    sub = dkim.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser(
        "rotate", help="new keys; the old ones stay published for a while", parents=[common]
    )
    p.add_argument("domain")
    p.add_argument(
        "--grace-days",
        type=int,
        default=admin_dkim.GRACE.days,
        metavar="DAYS",
        help=f"keep the old selectors published this long (default {admin_dkim.GRACE.days})",
    )
    p.set_defaults(handler=store_command(_dkim_rotate))
    p = sub.add_parser("list", help="list the keys and their state", parents=[common])
    p.add_argument("domain", nargs="?")
    p.set_defaults(handler=store_command(_dkim_list))

    p = top.add_parser("dns", help="the DNS records a domain must publish", parents=[common])
    p.add_argument("domain")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="as JSON")
    form.add_argument("--zone", action="store_true", help="as a zone file fragment")
    form.add_argument("--check", action="store_true", help="resolve each record and compare")
    p.add_argument(
        "--nameserver",
        action="append",
        metavar="ADDRESS[:PORT]",
        help="ask this server for --check (default: [dns] nameservers, else the system's)",
    )
    p.set_defaults(handler=store_command(_dns))
