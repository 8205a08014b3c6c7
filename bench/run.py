"""``python -m bench``: the command line, and one run from set-up to the report.

Theory of operation
-------------------
``main`` parses the options, raises the open-file limit (1,000 IDLE sessions need as many
descriptors, and the servers inherit the limit), and runs ``run`` on uvloop when it is
installed -- the load generator is one Python process and should not be the bottleneck it
measures. ``run``:

1. asks the chosen workloads for their accounts and mailbox contents;
2. makes one temporary directory and fills it: courriel's store through its API, Dovecot's
   Maildirs as files (``bench.fill``); the comparison servers only when running as root with
   their packages installed (``bench.install``), otherwise their columns say why;
3. starts courriel, Dovecot and Postfix privately on loopback and probes which of courriel's
   protocols answer for real;
4. runs each workload, printing its tables as soon as they exist (the ``relay`` workload starts
   its own servers: ``bench.servers.relay``);
5. stops every server it started (also on error or Ctrl-C), checks that courriel's store holds
   every message courriel acknowledged, runs the helper benchmarks (``bench/smtp_core.py`` and
   ``bench/store_bench.py`` when present), prints the machine and writes the JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pwd
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import extras, install, report
from bench.corpus import Corpus
from bench.fill import Item, create_maildir, fill_courriel, maildir, shared_hash, write_maildir
from bench.report import COURRIEL, Extra, Table
from bench.servers import Instance, ServerError, dovecot, make_dirs, postfix
from bench.servers import courriel as courriel_server
from bench.workloads import Context, Workload
from bench.workloads.imap_mixed import ImapMixedWorkload
from bench.workloads.imap_scale import ImapScaleWorkload
from bench.workloads.memory import MemoryWorkload
from bench.workloads.pop3 import Pop3Workload
from bench.workloads.push import PushWorkload
from bench.workloads.relay import RelayWorkload
from bench.workloads.smtp import SmtpWorkload

WORKLOADS: dict[str, Callable[[], Workload]] = {
    "smtp": SmtpWorkload,
    "imap": ImapMixedWorkload,
    "imap-scale": ImapScaleWorkload,
    "memory": MemoryWorkload,
    "push": PushWorkload,
    "pop3": Pop3Workload,
    "relay": RelayWorkload,
}
MIN_REPEATS = 3
WANT_FILES = 8192


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark courriel against Dovecot and Postfix on this machine.",
    )
    p.add_argument("--quick", action="store_true", help="small runs of every workload (~2 min)")
    p.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help=f"comma-separated workloads to run (default all: {','.join(WORKLOADS)})",
    )
    p.add_argument(
        "--repeats", type=int, default=MIN_REPEATS, help="runs per measurement, median kept"
    )
    p.add_argument("--no-compare", action="store_true", help="measure courriel only")
    p.add_argument(
        "--junk",
        action="store_true",
        help="courriel scores junk on port 25 ([junk] scoring, its default; off otherwise)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--profile", action="store_true", help="sample courriel with py-spy")
    p.add_argument("--results", type=Path, default=report.RESULTS_DIR, help="where JSON goes")
    args = p.parse_args(argv)
    chosen = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown or not chosen:
        p.error(f"--only: unknown workload {', '.join(unknown)} (known: {', '.join(WORKLOADS)})")
    if args.repeats < MIN_REPEATS:
        p.error(f"--repeats: at least {MIN_REPEATS}, so the median means something")
    args.only = chosen
    return args


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, WANT_FILES))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, bool]:
    try:
        import uvloop
    except ImportError:
        return None, False
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory, True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_file_limit()
    factory, uvloop_used = _loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        try:
            return runner.run(run(args, uvloop_used))
        except KeyboardInterrupt:
            print("interrupted; the private servers were stopped")
            return 130


def _merge(
    workloads: Sequence[Workload], quick: bool, corpus: Corpus
) -> tuple[list[str], dict[str, list[Item]]]:
    accounts: list[str] = []
    mail: dict[str, list[Item]] = {}
    for w in workloads:
        accounts += [a for a in w.accounts(quick) if a not in accounts]
        mail.update(w.mailboxes(quick, corpus))
    return accounts, mail


def _fill_maildirs(vmail: Path, accounts: list[str], mail: dict[str, list[Item]]) -> None:
    nobody = pwd.getpwnam("nobody")
    make_dirs(vmail, nobody.pw_uid, nobody.pw_gid)
    for addr in accounts:
        create_maildir(vmail, addr, nobody.pw_uid, nobody.pw_gid)
    for addr, items in mail.items():
        write_maildir(maildir(vmail, addr), items, nobody.pw_uid, nobody.pw_gid)


def _workdir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="courriel-bench-"))
    root.chmod(0o755)  # the servers' unprivileged users walk through it
    return root


def _say(text: str) -> None:
    print(text, flush=True)


def _comparison(args: argparse.Namespace) -> dict[str, str]:
    """Server -> why it is not compared; empty when Dovecot and Postfix take part."""
    if args.no_compare:
        return {s: f"{s}: not compared (--no-compare)" for s in ("dovecot", "postfix")}
    skipped = install.comparison_problems()
    for why in sorted(set(skipped.values())):
        _say(f"comparison skipped: {why}")
    return skipped


async def _fill(
    root: Path,
    workloads: Sequence[Workload],
    args: argparse.Namespace,
    corpus: Corpus,
    compare: bool,
) -> tuple[courriel_server.Setup, list[str], str]:
    t0 = time.perf_counter()
    accounts, mail = _merge(workloads, args.quick, corpus)
    password_hash = shared_hash()
    setup = courriel_server.configure(root / "courriel", junk=args.junk)
    if args.junk:
        _say("courriel scores junk on port 25 (--junk)")
    await fill_courriel(setup.config, accounts, mail, password_hash)
    t1 = time.perf_counter()
    if compare:
        await asyncio.to_thread(_fill_maildirs, root / "vmail", accounts, mail)
    t2 = time.perf_counter()
    _say(
        f"filled {len(accounts)} accounts: courriel {t1 - t0:.1f} s, Maildirs {t2 - t1:.1f} s"
        f" ({root})"
    )
    return setup, accounts, password_hash


async def _start_comparison(
    stack: contextlib.AsyncExitStack,
    root: Path,
    accounts: list[str],
    password_hash: str,
    instances: dict[str, Instance],
    skipped: dict[str, str],
) -> None:
    vmail = root / "vmail"
    try:
        dv = await dovecot.start(root / "dovecot", vmail, [(a, password_hash) for a in accounts])
        stack.push_async_callback(dv.stop)
        instances["dovecot"] = dv
        pf = await postfix.start(root / "postfix", vmail, accounts)
        stack.push_async_callback(pf.stop)
        instances["postfix"] = pf
    except ServerError as e:
        _say(f"comparison servers: {e}")
        for name in ("dovecot", "postfix"):
            skipped.setdefault(name, f"{name}: did not start ({e})")


async def _measure(
    args: argparse.Namespace,
    started: datetime,
    workloads: Sequence[Workload],
    root: Path,
    skipped: dict[str, str],
    tables: list[Table],
    extra: list[Extra],
) -> tuple[courriel_server.Setup, Context]:
    """Fills and starts every server, runs the workloads, and stops the servers again."""
    corpus = Corpus()
    setup, accounts, password_hash = await _fill(root, workloads, args, corpus, not skipped)
    async with contextlib.AsyncExitStack() as stack:
        instances: dict[str, Instance] = {}
        inst = await courriel_server.start(setup, root / "courriel" / "serve.log")
        stack.push_async_callback(inst.stop)
        instances[COURRIEL] = inst
        profiler = extras.start_profile(inst.proc.pid, root) if args.profile else None
        if not skipped:
            await _start_comparison(stack, root, accounts, password_hash, instances, skipped)
        live = await courriel_server.probe(setup.endpoints)
        for protocol in sorted(p for p, ok in live.items() if not ok):
            _say(f"courriel: {protocol} not available yet")
        ctx = Context(
            instances, live, args.quick, args.repeats, corpus, root / "vmail", skipped, workdir=root
        )
        for w in workloads:
            t1 = time.perf_counter()
            _say(f"\n-- {w.name} ...")
            for table in await w.run(ctx):
                tables.append(table)
                _say(report.render(table))
            _say(f"   ({time.perf_counter() - t1:.1f} s)")
        if profiler is not None:
            extra.append(await extras.stop_profile(profiler, args.results, started))
    return setup, ctx


async def run(args: argparse.Namespace, uvloop_used: bool) -> int:
    started = datetime.now(UTC)
    workloads = [WORKLOADS[name]() for name in args.only]
    skipped = _comparison(args)
    compare = not skipped
    root = _workdir()
    tables: list[Table] = []
    extra: list[Extra] = []
    try:
        setup, ctx = await _measure(args, started, workloads, root, skipped, tables, extra)
        extra.append(await extras.durability_check(setup.config, ctx.acknowledged))
        extra += await extras.helpers(args.quick)
    finally:
        if not args.keep:
            await asyncio.to_thread(shutil.rmtree, root, True)
    for item in extra:
        _say("\n" + report.render_extra(item))
    versions = {"courriel": courriel_version()} | install.versions(compare)
    host = report.machine(uvloop_used, versions)
    _say(f"\nmachine: {host.describe()}")
    options = {"quick": args.quick, "only": args.only, "repeats": args.repeats}
    path = report.write_json(started, host, options, tables, extra, args.results)
    _say(f"results: {path}")
    return 0


def courriel_version() -> str:
    from courriel import __version__

    return __version__
