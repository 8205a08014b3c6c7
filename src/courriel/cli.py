"""The ``courriel`` command: start the server, manage domains, users and aliases, show settings.

Theory of operation
-------------------
``main(argv)`` parses the command line, runs one command and returns the exit status; it never
calls ``sys.exit`` itself, so tests can drive it in-process. Account commands load the
configuration, open the store, run one operation from ``courriel.admin`` and close the store.
``serve`` writes the commented default configuration of a fresh installation and hands over to
``courriel.app.run``, with the first-run set-up (a demo account, its password shown once) to run
on the store before the worker processes start. ``db`` applies the schema
migrations, or exports, imports or copies the whole store (``courriel.store.transfer``).
``queue`` lists and steers the outbound queue (``courriel.queue.cli``).

Every error a person can cause ends as one line on stderr, ``courriel: error: ...``, and a
status that says whose it was:

* 0 -- done;
* 1 -- the operation failed: unknown domain or user, duplicate, a domain still in use, an
  unreadable or invalid configuration, a store that cannot be reached;
* 2 -- the command line is wrong: unknown command or option, missing argument, a malformed
  address, domain or size, no terminal to ask for a password;
* 130 -- interrupted (Ctrl-C).
An exception of any other kind is a bug and keeps its traceback.

Passwords never come from the command line unless asked for with ``--password-argv`` (unsafe:
every user of the machine can read another's argv in ``ps``). By default they are asked twice on
the terminal without echo; ``--password-stdin`` reads the first line of standard input, for
scripts (``printf '%s\\n' "$pw" | courriel user add ...``).

``COURRIEL_TEST_CHEAP_HASH=1`` is for the test suite only: it makes the command hash passwords
with the cheap test hasher instead of argon2id, so tests that run the real command stay fast.
Hashes made so are weak; never set it on a server.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

import idna

from courriel import (
    __version__,
    admin,
    admin_access,
    cli_access,
    cli_dns,
    cli_policy,
    cli_sieve,
    config,
)
from courriel.accounts.passwords import PasswordHasher
from courriel.admin import AdminError, Hasher, InputError
from courriel.check import command as check_command
from courriel.config import Config, ConfigError
from courriel.queue import cli as queue_cli
from courriel.store.base import Store, StoreError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
CHEAP_HASH_ENV = "COURRIEL_TEST_CHEAP_HASH"

StoreOp = Callable[[argparse.Namespace, Config, Store], Awaitable[None]]


class UsageError(Exception):
    """The command line cannot be right; the message says why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the whole usage text first; one line is easier to read and grep.
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --- plumbing -----------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> Config:
    return config.load(args.config)


def _hasher(cfg: Config) -> Hasher:
    if os.environ.get(CHEAP_HASH_ENV) == "1":
        return PasswordHasher.for_tests()
    return admin.default_hasher(cfg)


async def _with_store(args: argparse.Namespace, cfg: Config, op: StoreOp) -> None:
    from courriel.store.open import open_store

    # One more process on the data directory, beside a running server if there is one: no
    # upkeep of its own, it is gone in a moment.
    store = await open_store(cfg, serving=False)
    try:
        await op(args, cfg, store)
    finally:
        await store.close()


def _prepare(args: argparse.Namespace) -> Config:
    cfg = _load(args)
    admin.ensure_data_dir(cfg)  # SQLite needs the directory before the first command
    return cfg


def _run_with_store(args: argparse.Namespace, cfg: Config, op: StoreOp) -> None:
    asyncio.run(_with_store(args, cfg, op))


def _store_command(op: StoreOp) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        _run_with_store(args, _prepare(args), op)
        return EXIT_OK

    return run


def _unicode(alabel: str) -> str:
    try:
        return idna.decode(alabel)
    except (idna.IDNAError, UnicodeError):
        return alabel


# --- passwords ----------------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    """Blocks on the terminal or stdin; call it outside any event loop. Inside ``asyncio.run``
    Ctrl-C only cancels the main task, which a blocked read never notices, and in a worker
    thread the read would keep the process alive: here it raises ``KeyboardInterrupt`` at once."""
    if args.password_argv is not None:
        password: str = args.password_argv
    elif args.password_stdin:
        password = _password_from_stdin()
    else:
        password = _password_from_terminal()
    admin.check_password(password)  # refuse before the store is opened, not after
    return password


def _password_from_stdin() -> str:
    line = sys.stdin.buffer.readline()
    if not line:
        raise AdminError("no password on standard input (expected it on the first line)")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the password on standard input is not valid UTF-8") from None
    return text.removesuffix("\n").removesuffix("\r")


def _password_from_terminal() -> str:
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password; pipe it in with --password-stdin")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Retype new password: "):
        raise AdminError("the passwords do not match")
    return first


def _size(text: str) -> int:
    try:
        return admin.parse_size(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _optional_size(text: str) -> int | None:
    return None if text.strip().lower() in ("none", "unlimited") else _size(text)


# --- commands -----------------------------------------------------------------------------------


async def _domain_add(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    d = await admin.add_domain(store, args.domain)
    shown = _unicode(d.name)
    print(f"added domain {d.name}" + (f" ({shown})" if shown != d.name else ""))


async def _domain_list(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    for d in await admin.list_domains(store):
        shown = _unicode(d.name)
        line = d.name + (f" ({shown})" if shown != d.name else "")
        print(line + (f"  catch-all -> {d.catch_all}" if d.catch_all else ""))


async def _domain_remove(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin.remove_domain(store, args.domain)
    print(f"removed domain {admin.domain_name(args.domain)}")


async def _domain_catchall(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    target = await admin.set_catch_all(store, args.domain, None if args.off else args.address)
    name = admin.domain_name(args.domain)
    print(
        f"catch-all of {name} turned off" if target is None else f"catch-all of {name} -> {target}"
    )


def _check_catchall(args: argparse.Namespace) -> int:
    if args.off == (args.address is not None):
        raise UsageError("domain catchall: give either an ADDRESS or --off")
    return _store_command(_audited("domain catchall", "domain", _domain_catchall))(args)


def _audited(action: str, field: str, op: StoreOp) -> StoreOp:
    """``op`` written to the audit log with the argument ``field`` (never a password)."""
    return cli_access.audited(action, lambda args: str(getattr(args, field)), op)


def _user_add(args: argparse.Namespace) -> int:
    async def check(args: argparse.Namespace, cfg: Config, store: Store) -> None:
        await admin.check_new_user(store, args.address)

    async def add(args: argparse.Namespace, cfg: Config, store: Store) -> None:
        user = await admin.add_user(
            store, _hasher(cfg), args.address, password, quota_bytes=args.quota
        )
        await admin_access.audit(store, cli_access.actor(), "user add", user.address)
        if args.admin:
            await admin_access.set_admin(store, user.address, True)
            await admin_access.audit(store, cli_access.actor(), "user admin", f"{user.address} on")
        quota = (
            "" if user.quota_bytes is None else f" (quota {admin.format_size(user.quota_bytes)})"
        )
        role = " as an administrator" if args.admin else ""
        print(f"added user {user.address}{quota}{role}")

    cfg = _prepare(args)
    # Say "unknown domain" before asking for a password, not after.
    _run_with_store(args, cfg, check)
    password = _read_password(args)
    _run_with_store(args, cfg, add)
    return EXIT_OK


def _user_passwd(args: argparse.Namespace) -> int:
    async def check(args: argparse.Namespace, cfg: Config, store: Store) -> None:
        await admin.require_user(store, args.address)

    async def change(args: argparse.Namespace, cfg: Config, store: Store) -> None:
        await admin.set_password(store, _hasher(cfg), args.address, password)
        await admin_access.audit(store, cli_access.actor(), "user passwd", args.address)
        print(f"password of {admin.address(args.address)} changed")

    cfg = _prepare(args)
    _run_with_store(args, cfg, check)
    password = _read_password(args)
    _run_with_store(args, cfg, change)
    return EXIT_OK


async def _user_quota(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin.set_quota(store, args.address, args.size)
    limit = "unlimited" if args.size is None else admin.format_size(args.size)
    if args.messages != admin.KEEP or args.mailboxes != admin.KEEP:
        await admin.set_count_quota(
            store, args.address, messages=args.messages, mailboxes=args.mailboxes
        )
    print(f"quota of {admin.address(args.address)}: {limit}")


async def _user_tag_folders(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    on = args.setting == "on"
    await admin.set_tag_folders(store, args.address, on)
    where = "into the folder named by the tag" if on else "into INBOX"
    print(f"mail for {admin.address(args.address)} with a +tag goes {where}")


async def _user_junk_threshold(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin.set_junk_threshold(store, args.address, args.threshold)
    said = f"{args.threshold:g}" if args.threshold is not None else "the server's ([junk])"
    print(f"junk threshold of {admin.address(args.address)}: {said}")


def _threshold(text: str) -> float | None:
    if text.lower() == "default":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _optional_count(text: str) -> int | None:
    if text.strip().lower() in ("none", "unlimited"):
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of zero or more: {text!r}")
    return int(text)


async def _user_remove(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin_access.remove_user(store, args.address)
    print(f"removed user {admin.address(args.address)} and all their mail")


async def _user_list(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    rows = [("ADDRESS", "MESSAGES", "USED", "QUOTA", "USE%")]
    for entry in await admin.list_users(store, args.domain):
        usage, limit = entry.usage, entry.usage.limit_bytes
        percent = "-" if not limit else f"{100 * usage.bytes // limit}%"
        quota = "unlimited" if limit is None else admin.format_size(limit)
        rows.append(
            (
                entry.user.address,
                str(usage.messages),
                admin.format_size(usage.bytes),
                quota,
                percent,
            )
        )
    if len(rows) > 1:
        _print_table(rows)


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


async def _alias_add(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    a = await admin.add_alias(store, args.source, args.target)
    print(f"added alias {a.source} -> {a.target}")


async def _alias_list(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    for a in await admin.list_aliases(store, args.domain):
        print(f"{a.source} -> {a.target}")


async def _alias_remove(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    await admin.remove_alias(store, args.source, args.target)
    what = admin.address(args.source)
    print(f"removed alias {what}" + ("" if args.target is None else f" -> {args.target}"))


def _config_show(args: argparse.Namespace) -> int:
    print(config.to_toml(_load(args)), end="")
    return EXIT_OK


def _version(args: argparse.Namespace) -> int:
    print(f"courriel {__version__}")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if admin.write_default_config(cfg):
        print(f"courriel: wrote the default configuration to {cfg.path}", file=sys.stderr)

    async def first_run(store: Store) -> None:
        # Runs in the parent before the workers are forked: its hashing threads must be gone.
        hasher = _hasher(cfg)
        try:
            created = await admin.first_run(cfg, store, hasher)
        finally:
            if isinstance(hasher, PasswordHasher):
                hasher.close()
        if created is not None:
            _show_first_run(created)

    # Imported here: the account commands never need the listeners and protocol engines.
    from courriel.app import run

    return run(cfg, setup=first_run)


# --- db: schema and moving an installation (courriel.store.transfer) --------------------


def _db_migrate(args: argparse.Namespace) -> int:
    from courriel.store.transfer import migrate_configured

    applied = asyncio.run(migrate_configured(_prepare(args)))
    print(f"applied migrations {', '.join(map(str, applied))}" if applied else "schema up to date")
    return EXIT_OK


def _print_counts(verb: str, rows: dict[str, int]) -> None:
    print(
        f"{verb} " + ", ".join(f"{n} {table}" for table, n in rows.items() if table != "counters")
    )


def _whole_store(store: Store) -> None:
    """A SQLite store is moved whole only while no server has it open."""
    from courriel.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        store.claim_directory(exclusive=True)


async def _db_export(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    from pathlib import Path

    from courriel.store.transfer import export_file

    _whole_store(store)
    _print_counts("exported", (await export_file(store, Path(args.file))).rows)


async def _db_import(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    from pathlib import Path

    from courriel.store.transfer import import_file

    _whole_store(store)
    _print_counts("imported", (await import_file(store, Path(args.file))).rows)


async def _db_copy(args: argparse.Namespace, cfg: Config, store: Store) -> None:
    from courriel.store.transfer import copy_to

    _whole_store(store)
    _print_counts("copied", (await copy_to(store, cfg, args.to)).rows)


def _show_first_run(created: admin.FirstRun) -> None:
    rule = "=" * 72
    print(
        "\n".join(
            (
                rule,
                " courriel: first start on an empty store, so a demo account was made.",
                f" Created {created.address} with password: {created.password}",
                " This password is shown only this once and is kept nowhere in clear.",
                f" Change it with:  courriel user passwd {created.address}",
                rule,
            )
        ),
        flush=True,
    )


# --- the command line ---------------------------------------------------------------------------


def _password_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    group.add_argument(
        "--password-argv",
        metavar="PASSWORD",
        help="take the password from the command line; UNSAFE: other users of this machine "
        "can read it in the process list, and it stays in the shell history",
    )


def _add_domain_commands(top: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    domain = top.add_parser("domain", help="mail domains", parents=[common])
    sub = domain.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("add", help="add a domain (IDN allowed)", parents=[common])
    p.add_argument("domain")
    p.set_defaults(handler=_store_command(_audited("domain add", "domain", _domain_add)))
    p = sub.add_parser("list", help="list the domains", parents=[common])
    p.set_defaults(handler=_store_command(_domain_list))
    p = sub.add_parser("remove", help="remove a domain that has no users left", parents=[common])
    p.add_argument("domain")
    p.set_defaults(handler=_store_command(_audited("domain remove", "domain", _domain_remove)))
    p = sub.add_parser(
        "catchall", help="send mail for unknown local parts to ADDRESS", parents=[common]
    )
    p.add_argument("domain")
    p.add_argument("address", nargs="?")
    p.add_argument("--off", action="store_true", help="turn the catch-all off")
    p.set_defaults(handler=_check_catchall)
    cli_policy.add_command(sub, common, _store_command)


def _add_user_commands(top: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    user = top.add_parser("user", help="mail users", parents=[common])
    sub = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser(
        "add", help="add a user with INBOX, Sent, Drafts, Trash, Junk, Archive", parents=[common]
    )
    p.add_argument("address")
    p.add_argument("--quota", type=_size, metavar="SIZE", help="mail storage limit, e.g. 2G, 500M")
    p.add_argument("--admin", action="store_true", help="may use the web admin and its API")
    _password_options(p)
    p.set_defaults(handler=_user_add)
    p = sub.add_parser("passwd", help="change a user's password", parents=[common])
    p.add_argument("address")
    _password_options(p)
    p.set_defaults(handler=_user_passwd)
    p = sub.add_parser("quota", help="change a user's quota", parents=[common])
    p.add_argument("address")
    p.add_argument("size", type=_optional_size, metavar="SIZE", help='e.g. 2G, or "none"')
    for name in ("messages", "mailboxes"):
        p.add_argument(
            f"--{name}",
            type=_optional_count,
            default=admin.KEEP,
            metavar="N",
            help=f'limit on the number of {name}, or "none" (RFC 9208 quota resources)',
        )
    p.set_defaults(handler=_store_command(_audited("user quota", "address", _user_quota)))
    p = sub.add_parser(
        "tag-folders",
        help="deliver user+tag@domain into the folder named tag, when it exists",
        parents=[common],
    )
    p.add_argument("address")
    p.add_argument("setting", choices=("on", "off"))
    p.set_defaults(
        handler=_store_command(_audited("user tag-folders", "address", _user_tag_folders))
    )
    p = sub.add_parser(
        "junk-threshold", help="the score from which a user's mail goes to Junk", parents=[common]
    )
    p.add_argument("address")
    p.add_argument("threshold", type=_threshold, metavar="SCORE", help='e.g. 7.5, or "default"')
    p.set_defaults(
        handler=_store_command(_audited("user junk-threshold", "address", _user_junk_threshold))
    )
    p = sub.add_parser("remove", help="remove a user and all their mail", parents=[common])
    p.add_argument("address")
    p.set_defaults(handler=_store_command(_audited("user remove", "address", _user_remove)))
    p = sub.add_parser("list", help="list users with their quota usage", parents=[common])
    p.add_argument("domain", nargs="?")
    p.set_defaults(handler=_store_command(_user_list))
    cli_access.add_user_admin(sub, common, _store_command)


def _add_alias_commands(top: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    alias = top.add_parser("alias", help="forwarding addresses", parents=[common])
    sub = alias.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("add", help="deliver mail for SOURCE to TARGET", parents=[common])
    p.add_argument("source")
    p.add_argument("target")
    p.set_defaults(handler=_store_command(_audited("alias add", "source", _alias_add)))
    p = sub.add_parser("list", help="list the aliases", parents=[common])
    p.add_argument("domain", nargs="?")
    p.set_defaults(handler=_store_command(_alias_list))
    p = sub.add_parser("remove", help="remove an alias, or one of its targets", parents=[common])
    p.add_argument("source")
    p.add_argument("target", nargs="?")
    p.set_defaults(handler=_store_command(_audited("alias remove", "source", _alias_remove)))


def _add_db_commands(top: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    db = top.add_parser("db", help="the database: schema, export, import, copy", parents=[common])
    sub = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("migrate", help="bring the store's schema up to date", parents=[common])
    p.set_defaults(handler=_db_migrate)
    p = sub.add_parser(
        "export", help="write the whole store to FILE (stop courriel first)", parents=[common]
    )
    p.add_argument("file", metavar="FILE")
    p.set_defaults(handler=_store_command(_db_export))
    p = sub.add_parser("import", help="load an export FILE into an empty store", parents=[common])
    p.add_argument("file", metavar="FILE")
    p.set_defaults(handler=_store_command(_db_import))
    p = sub.add_parser("copy", help="copy the store into an empty store at URL", parents=[common])
    p.add_argument("--to", required=True, metavar="URL", help="e.g. postgresql://host/courriel")
    p.set_defaults(handler=_store_command(_db_copy))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="courriel",
        description="A mail server: SMTP, POP3 and IMAP from one program.",
        epilog="Exit status: 0 done, 1 the operation failed, 2 the command line is wrong.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $COURRIEL_DATA/courriel.toml, else ./var/courriel.toml)",
    )
    parser.add_argument("--version", action="version", version=f"courriel {__version__}")
    # The same option after the command; SUPPRESS keeps it from hiding one given before.
    common = _Parser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = top.add_parser("serve", help="run the mail server", parents=[common])
    p.set_defaults(handler=_serve)
    _add_domain_commands(top, common)
    _add_user_commands(top, common)
    _add_alias_commands(top, common)
    _add_db_commands(top, common)
    queue_cli.add_commands(top, common, _store_command)
    cli_dns.add_commands(top, common, _store_command)
    cli_access.add_commands(top, common, _store_command)
    cli_sieve.add_commands(top, common, _store_command)
    check_command.add_command(top, common, _store_command)
    cfg = top.add_parser("config", help="configuration", parents=[common])
    sub = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("show", help="print the effective settings as TOML", parents=[common])
    p.set_defaults(handler=_config_show)
    p = top.add_parser("version", help="print the version", parents=[common])
    p.set_defaults(handler=_version)
    return parser


def _error(message: object, status: int) -> int:
    # One line, whatever the message held, so that logs and scripts can rely on it.
    text = " ".join(str(message).split()) or "failed"
    print(f"courriel: error: {text}", file=sys.stderr)
    return status


def _os_error(e: OSError) -> str:
    if e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return e.strerror or str(e)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit status (see the module docstring)."""
    try:
        args = build_parser().parse_args(argv)
        status: int = args.handler(args)
        return status
    except SystemExit as e:  # --help and --version end here
        return e.code if isinstance(e.code, int) else EXIT_OK
    except UsageError as e:
        return _error(e, EXIT_USAGE)
    except InputError as e:
        return _error(e, EXIT_USAGE)
    except (AdminError, ConfigError) as e:
        return _error(e, EXIT_FAILURE)
    except StoreError as e:
        return _error(str(e) or f"the store refused: {type(e).__name__}", EXIT_FAILURE)
    except BrokenPipeError:
        # The reader went away (``courriel user list | head``): nothing left to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as e:
        return _error(_os_error(e), EXIT_FAILURE)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
