"""``courriel user admin USER on|off`` and ``courriel token add|list|remove``.

Theory of operation
-------------------
Like ``courriel.cli_dns``: ``add_commands`` puts the commands on the parser ``courriel.cli``
builds and is handed its ``store_command`` wrapper, so there is no import cycle. The operations
are ``courriel.admin_access``'s; each change is written to the audit log with the actor
``cli:`` and the name of the system user who ran it. ``audited`` does the same for the
account commands of ``courriel.cli``. A new token is printed once, on stdout
alone, so ``TOKEN=$(courriel token add deploy)`` works; only its digest is kept.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from courriel import admin_access
from courriel.config import Config
from courriel.store.base import Store

StoreOp = Callable[[argparse.Namespace, Config, Store], Awaitable[None]]
StoreCommand = Callable[[StoreOp], Callable[[argparse.Namespace], int]]


def actor() -> str:
    """Who ran the command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def audited(action: str, detail: Callable[[argparse.Namespace], str], op: StoreOp) -> StoreOp:
    """``op``, then one audit-log entry for it (only when it succeeded)."""

    async def run(args: argparse.Namespace, cfg: Config, store: Store) -> None:
        await op(args, cfg, store)
        await admin_access.audit(store, actor(), action, detail(args))

    return run


async def set_admin(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    on = args.state == "on"
    user = await admin_access.set_admin(store, args.address, on)
    await admin_access.audit(store, actor(), "user admin", f"{user.address} {args.state}")
    print(f"{user.address} {'is' if on else 'is no longer'} an administrator")


async def _token_add(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    token, secret = await admin_access.add_api_token(store, args.name)
    await admin_access.audit(store, actor(), "token add", token.name)
    print(secret)


async def _token_list(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    for t in await admin_access.list_api_tokens(store):
        print(f"{t.name}  created {datetime.fromtimestamp(t.created, UTC):%Y-%m-%d %H:%M} UTC")


async def _token_remove(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin_access.remove_api_token(store, args.name)
    await admin_access.audit(store, actor(), "token remove", args.name)
    print(f"removed API token {args.name}")


def add_user_admin(
    sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser, run: StoreCommand
) -> None:
    p = sub.add_parser("admin", help="give or take a user's administrator rights", parents=[common])
    p.add_argument("address")
    p.add_argument("state", choices=("on", "off"))
    p.set_defaults(handler=run(set_admin))


def add_commands(
    top: argparse._SubParsersAction[Any], common: argparse.ArgumentParser, run: StoreCommand
) -> None:
    token = top.add_parser("token", help="API tokens for the JSON API", parents=[common])
    sub = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("add", help="make a token and print it (shown once)", parents=[common])
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=run(_token_add))
    p = sub.add_parser("list", help="the tokens' names", parents=[common])
    p.set_defaults(handler=run(_token_list))
    p = sub.add_parser("remove", help="revoke a token", parents=[common])
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=run(_token_remove))
