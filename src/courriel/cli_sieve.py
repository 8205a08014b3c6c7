"""``courriel sieve``: the Sieve scripts of a user, and the global ones, from the command line.

Theory of operation
-------------------
Users edit their scripts over ManageSieve; this is for the administrator: look at a user's
scripts, install or activate one for them, and keep the global scripts that ``include :global``
names (RFC 6609), which no user can write. Every script is compiled before it is stored, with
the same compiler and limits as a ManageSieve upload, so a script refused there is refused here
with the same sentence. ``add_commands`` is handed ``courriel.cli``'s ``store_command`` wrapper,
as ``courriel.cli_dns`` is, so there is no import cycle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from courriel import admin, sieve
from courriel.admin import AdminError
from courriel.cli_dns import StoreCommand
from courriel.config import Config
from courriel.store.base import InUse, NotFound, Store, User


async def _user(store: Store, address: str) -> User:
    norm = admin.address(address)
    user = await store.get_user(norm)
    if user is None:
        raise AdminError(f"unknown user {norm}")
    return user


def _read_script(source: str) -> str:
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as e:
        raise AdminError(f"cannot read {source}: {e.strerror}") from None
    try:
        sieve.compile_script(data)
    except sieve.SieveError as e:
        raise AdminError(f"the script is refused: {e}") from None
    return data.decode("utf-8")


async def _list(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    user = await _user(store, args.address)
    for script in await store.sieve_scripts(user.id):
        print(f"{script.name}{'  (active)' if script.active else ''}")


async def _show(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    user = await _user(store, args.address)
    script = await store.sieve_script(user.id, args.name)
    if script is None:
        raise AdminError(f"{user.address} has no script {args.name!r}")
    sys.stdout.write(script.content)


async def _put(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    user = await _user(store, args.address)
    await store.put_sieve_script(user.id, args.name, _read_script(args.file))
    if args.activate:
        await store.activate_sieve_script(user.id, args.name)
    print(f"stored script {args.name!r} for {user.address}{' (active)' if args.activate else ''}")


async def _activate(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    user = await _user(store, args.address)
    try:
        await store.activate_sieve_script(user.id, args.name)
    except NotFound:
        raise AdminError(f"{user.address} has no script {args.name!r}") from None
    state = "no active script" if args.name is None else f"{args.name!r} is active"
    print(f"{user.address}: {state}")


async def _remove(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    user = await _user(store, args.address)
    try:
        await store.delete_sieve_script(user.id, args.name)
    except NotFound:
        raise AdminError(f"{user.address} has no script {args.name!r}") from None
    except InUse:
        raise AdminError(f"{args.name!r} is active; deactivate it first") from None
    print(f"removed script {args.name!r} of {user.address}")


async def _global(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    if args.remove:
        await store.put_global_sieve_script(args.name, None)
        print(f"removed global script {args.name!r}")
    elif args.file is None:
        content = await store.global_sieve_script(args.name)
        if content is None:
            raise AdminError(f"no global script {args.name!r}")
        sys.stdout.write(content)
    else:
        await store.put_global_sieve_script(args.name, _read_script(args.file))
        print(f"stored global script {args.name!r}")


def add_commands(
    top: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    store_command: StoreCommand,
) -> None:
    cmd = top.add_parser("sieve", help="Sieve filter scripts", parents=[common])
    sub = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("list", help="a user's scripts", parents=[common])
    p.add_argument("address")
    p.set_defaults(handler=store_command(_list))
    p = sub.add_parser("show", help="print one of a user's scripts", parents=[common])
    p.add_argument("address")
    p.add_argument("name")
    p.set_defaults(handler=store_command(_show))
    p = sub.add_parser("put", help="store a script for a user (checked first)", parents=[common])
    p.add_argument("address")
    p.add_argument("name")
    p.add_argument("file", nargs="?", default="-", help="the script; - or none: standard input")
    p.add_argument("--activate", action="store_true", help="make it the active script")
    p.set_defaults(handler=store_command(_put))
    p = sub.add_parser("activate", help="make a script the active one", parents=[common])
    p.add_argument("address")
    p.add_argument("name")
    p.set_defaults(handler=store_command(_activate))
    p = sub.add_parser(
        "deactivate", help="leave the user without an active script", parents=[common]
    )
    p.add_argument("address")
    p.set_defaults(handler=store_command(_activate), name=None)
    p = sub.add_parser("remove", help="remove a script that is not active", parents=[common])
    p.add_argument("address")
    p.add_argument("name")
    p.set_defaults(handler=store_command(_remove))
    p = sub.add_parser(
        "global", help='show, store or remove a global script ("include :global")', parents=[common]
    )
    p.add_argument("name")
    p.add_argument("file", nargs="?", help="store this script (- for standard input)")
    p.add_argument("--remove", action="store_true")
    p.set_defaults(handler=store_command(_global))
