"""The harness's own pieces: Maildir naming, options, workload plans, process memory, profiles."""

from __future__ import annotations

import asyncio
import email
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from bench.clients import ClientError
from bench.corpus import Corpus
from bench.extras import inclusive_frames, top_frames
from bench.fill import Item, create_maildir, maildir_info, maildir_name, write_maildir
from bench.servers import courriel as courriel_server
from bench.servers import free_ports, process_tree, pss_bytes, rss_bytes
from bench.servers.courriel import _live
from bench.workloads import alternating, bounded, run_all

from bench import run
from courriel.config import load


def test_maildir_info_letters_are_in_ascii_order() -> None:
    flags = frozenset({"\\Seen", "\\Deleted", "\\Answered", "\\Flagged", "\\Draft"})
    assert maildir_info(flags) == "2,DFRST"
    assert maildir_info(frozenset()) == "2,"
    assert maildir_info(frozenset({"$Label"})) == "2,"  # keywords need dovecot-keywords


def test_maildir_name_carries_both_sizes() -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n"
    name = maildir_name(3, Item(raw, frozenset({"\\Seen"})))
    assert ",S=17," in name  # LF line ends as stored
    assert ",W=20:" in name  # CRLF size an IMAP client sees
    assert name.endswith(":2,S")


def test_written_maildir_files_have_lf_line_ends_and_the_named_size(tmp_path: Path) -> None:
    uid, gid = os.getuid(), os.getgid()
    base = create_maildir(tmp_path, "alice@example.test", uid, gid)
    assert base == tmp_path / "example.test" / "alice"
    messages = Corpus().messages(5)
    write_maildir(base, [Item(m.raw) for m in messages], uid, gid)
    files = sorted((base / "cur").iterdir(), key=lambda p: int(p.name.split(".")[0]))
    assert len(files) == 5
    for path, m in zip(files, messages, strict=True):
        data = path.read_bytes()
        assert b"\r\n" not in data
        assert f",S={len(data)}," in path.name
        parsed = email.message_from_bytes(data)
        assert parsed["Message-ID"] == m.message_id
    assert {p.name for p in (base / "new").iterdir()} == set()


def test_options_choose_workloads_and_refuse_unknown_ones() -> None:
    args = run.parse_args(["--quick", "--only", "smtp, pop3"])
    assert args.quick
    assert args.only == ["smtp", "pop3"]
    assert run.parse_args([]).only == list(run.WORKLOADS)
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "smtp,ftp"])
    with pytest.raises(SystemExit):
        run.parse_args(["--repeats", "2"])
    assert run.parse_args(["--junk"]).junk and not run.parse_args([]).junk


@pytest.mark.parametrize("junk", [False, True])
def test_junk_option_leaves_courriel_scoring_on(tmp_path: Path, junk: bool) -> None:
    setup = courriel_server.configure(tmp_path, junk=junk)
    cfg = load(setup.config)
    assert cfg.junk.scoring is junk
    assert not cfg.mailauth.check_inbound  # the benchmark's domains are in no DNS either way


@pytest.mark.parametrize("quick", [True, False])
def test_workloads_never_share_an_account(quick: bool) -> None:
    seen: dict[str, str] = {}
    for name, make in run.WORKLOADS.items():
        for addr in make().accounts(quick):
            assert addr not in seen, f"{addr} used by {seen.get(addr)} and {name}"
            seen[addr] = name


def test_mailbox_plans_fill_only_declared_accounts() -> None:
    corpus = Corpus()
    workloads = [make() for make in run.WORKLOADS.values()]
    accounts, mail = run._merge(workloads, True, corpus)
    assert len(accounts) == len(set(accounts))
    assert set(mail) <= set(accounts)
    assert len(mail["pop@example.test"]) == 1000
    assert len(mail["scale10000@example.test"]) == 10000


def test_process_memory_of_this_process_tree() -> None:
    pids = process_tree(os.getpid())
    assert pids[0] == os.getpid()
    rss, pss = rss_bytes(pids), pss_bytes(pids)
    assert rss > 1 << 20
    assert 0 < pss <= rss
    assert rss_bytes([2**22 + 7]) == 0  # a process that does not exist holds nothing


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert all(1024 <= p <= 65535 for p in ports)


def test_placeholder_greetings_are_not_live() -> None:
    assert _live("smtp", b"220 mail.example.test ESMTP")
    assert not _live("smtp", b"554 5.3.2 mail courriel: SMTP service not enabled in this build")
    assert _live("imap", b"* OK [CAPABILITY IMAP4rev1] ready")
    assert not _live("imap", b"* BYE [UNAVAILABLE] courriel: IMAP service not enabled")
    assert _live("pop3", b"+OK ready")
    assert not _live("pop3", b"-ERR [SYS/PERM] courriel: POP3 service not enabled")


def test_top_frames_counts_the_innermost_frame() -> None:
    collapsed = "\n".join(
        [
            "main;serve;fetch 30",
            "main;serve;search 50",
            "main;idle;search 10",
            "main;serve 10",
            "garbage line",
        ]
    )
    top = top_frames(collapsed, top=2)
    assert top == [("search", 0.6), ("fetch", 0.3)]
    assert top_frames("") == []


def test_inclusive_frames_count_a_function_once_per_stack() -> None:
    collapsed = "\n".join(
        [
            "run (courriel/app.py:1);fetch (courriel/imap.py:2);read (courriel/store.py:3) 40",
            "run (courriel/app.py:1);idle (courriel/imap.py:9);idle (courriel/imap.py:9) 10",
            "run (courriel/app.py:1);select (asyncio/base.py:4) 50",
        ]
    )
    top = dict(inclusive_frames(collapsed))
    assert top["run (courriel/app.py:1)"] == 1.0
    assert top["fetch (courriel/imap.py:2)"] == 0.4
    assert top["idle (courriel/imap.py:9)"] == 0.1  # recursion counts once
    assert "select (asyncio/base.py:4)" not in top


async def test_run_all_cancels_the_others_when_one_fails() -> None:
    finished: list[str] = []
    cancelled: list[str] = []

    async def slow(name: str) -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        finished.append(name)
        return name

    async def failing() -> str:
        await asyncio.sleep(0.01)
        raise ClientError("refused")

    with pytest.raises(ClientError, match="refused"):
        await run_all([slow("a"), failing(), slow("b")], 10)
    assert sorted(cancelled) == ["a", "b"]
    assert finished == []


async def test_bounded_keeps_to_its_limit_and_its_order() -> None:
    running = 0
    peak = 0

    def job(n: int) -> Callable[[], Awaitable[int]]:
        async def run_one() -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            return n

        return run_one

    assert await bounded([job(n) for n in range(20)], 3, 10) == list(range(20))
    assert peak == 3


async def test_alternating_reverses_the_order_of_the_servers_at_every_repeat() -> None:
    order: list[str] = []

    async def measure(server: str) -> int:
        order.append(server)
        return len(order)

    runs = await alternating(("courriel", "dovecot"), 4, measure, lambda _: None)
    assert order == ["courriel", "dovecot", "dovecot", "courriel"] * 2
    assert runs == {"courriel": [1, 4, 5, 8], "dovecot": [2, 3, 6, 7]}


async def test_alternating_stops_measuring_a_server_at_its_first_failure() -> None:
    calls: list[str] = []

    async def measure(server: str) -> int:
        calls.append(server)
        if server == "postfix" and calls.count("postfix") == 2:
            raise ClientError("greeting b'554'")
        return 1

    def why_not(server: str) -> str | None:
        return "dovecot: not running" if server == "dovecot" else None

    runs = await alternating(("courriel", "postfix", "dovecot"), 3, measure, why_not)
    assert runs == {
        "courriel": [1, 1, 1],
        "postfix": "postfix: failed (greeting b'554')",
        "dovecot": "dovecot: not running",
    }
    assert calls.count("postfix") == 2 and "dovecot" not in calls
