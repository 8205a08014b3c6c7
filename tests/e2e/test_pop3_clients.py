"""POP3 end to end with Debian's clients: curl, fetchmail and getmail6, over STLS and 995.

Every client must verify the server's self-signed certificate (``srv.cert``), and what it
downloads must be what was delivered: byte for byte where the client writes the message as it
came (curl), and up to CRLF -> LF where the client hands messages to a local program or Maildir
in Unix line ends (fetchmail, getmail6), which is their documented behaviour.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from courriel.testing.pop3 import DOTTY, PASSWORD, Server, message, pop3_server

ALICE = "alice@example.test"
NeedProgram = Callable[[str], str]  # the need_program fixture of tests/conftest.py
pytestmark = pytest.mark.client


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,  # a client that asks for input must fail, not wait
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"{argv[0]} did not finish: {out!r} {err!r}") from None
    assert proc.returncode is not None
    return proc.returncode, out, err


async def remaining(srv: Server, mailbox_id: int) -> int:
    return len(await srv.store.list_messages(mailbox_id))


# --- curl -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["pop3s", "pop3"])
async def test_curl_retrieves_byte_identical(
    tmp_path: Path, need_program: NeedProgram, scheme: str
) -> None:
    curl = need_program("curl")
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user(ALICE)
        sent = [message("first"), DOTTY]
        await srv.deliver(alice, *sent)
        port = srv.pop3s if scheme == "pop3s" else srv.pop3
        got = []
        for n in (1, 2):
            # --ssl-reqd: on pop3:// curl must use STLS or give up (RFC 2595).
            code, out, err = await run(
                curl, "--silent", "--show-error", "--ssl-reqd", "--cacert", str(srv.cert),
                "--user", f"{ALICE}:{PASSWORD}", f"{scheme}://127.0.0.1:{port}/{n}",
            )  # fmt: skip
            assert code == 0, err
            got.append(out)
        code, listing, err = await run(
            curl, "--silent", "--ssl-reqd", "--cacert", str(srv.cert),
            "--user", f"{ALICE}:{PASSWORD}", f"{scheme}://127.0.0.1:{port}/",
        )  # fmt: skip
    assert got == sent
    assert code == 0
    assert listing == b"1 %d\r\n2 %d\r\n" % (len(sent[0]), len(sent[1]))


async def test_curl_dele_removes_the_message(tmp_path: Path, need_program: NeedProgram) -> None:
    curl = need_program("curl")
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user(ALICE)
        appended = await srv.deliver(alice, message("first"), message("second"))
        code, _, err = await run(
            curl, "--silent", "--show-error", "--cacert", str(srv.cert),
            "--user", f"{ALICE}:{PASSWORD}", "--request", "DELE", "--head",
            f"pop3s://127.0.0.1:{srv.pop3s}/1",
        )  # fmt: skip
        assert code == 0, err
        left = [m.uid for m in await srv.store.list_messages(appended[0].mailbox_id)]
    assert left == [appended[1].uid]


async def test_curl_wrong_password_fails(tmp_path: Path, need_program: NeedProgram) -> None:
    curl = need_program("curl")
    async with pop3_server(tmp_path) as srv:
        await srv.add_user(ALICE)
        code, _, _ = await run(
            curl, "--silent", "--cacert", str(srv.cert), "--user", f"{ALICE}:wrong",
            f"pop3s://127.0.0.1:{srv.pop3s}/",
        )  # fmt: skip
    assert code == 67  # curl: "the user name, password, or similar was not accepted"


# --- fetchmail --------------------------------------------------------------------------------


def _fetchmail_rc(tmp_path: Path, srv: Server, *, implicit_tls: bool, keep: bool) -> Path:
    out = tmp_path / "fetched"
    out.mkdir()
    mda = tmp_path / "mda.sh"
    # One file per message: the MDA runs once per message with it on standard input.
    mda.write_text(f'#!/bin/sh\nexec cat > "{out}/msg.$$"\n')
    mda.chmod(0o755)
    port = srv.pop3s if implicit_tls else srv.pop3
    tls = "ssl" if implicit_tls else "sslproto tls1.2+"  # the latter makes fetchmail use STLS
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"set no bouncemail\n"
        f"poll 127.0.0.1 protocol pop3 port {port}\n"
        f'  user "{ALICE}" password "{PASSWORD}" is "nobody" here\n'
        f"  {tls} sslcertck sslcertfile {srv.cert} sslcommonname localhost\n"
        f"  {'keep' if keep else 'nokeep'} fetchall\n"
        f'  mda "{mda}"\n'
    )
    rc.chmod(0o600)  # fetchmail refuses a readable rc file holding a password
    return rc


async def _fetchmail(tmp_path: Path, program: str, rc: Path) -> tuple[int, bytes]:
    code, out, err = await run(
        program, "--fetchmailrc", str(rc), "--idfile", str(tmp_path / "ids"),
        "--nosyslog", "--invisible", "--verbose",
        env={"HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path)},
    )  # fmt: skip
    return code, out + err


def _fetched(tmp_path: Path) -> list[bytes]:
    return sorted(p.read_bytes() for p in (tmp_path / "fetched").iterdir())


def _unix(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("implicit_tls", [True, False], ids=["995", "110-stls"])
async def test_fetchmail_keep_then_delete(
    tmp_path: Path, need_program: NeedProgram, implicit_tls: bool
) -> None:
    fetchmail = need_program("fetchmail")
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user(ALICE)
        sent = [message("first"), DOTTY]
        appended = await srv.deliver(alice, *sent)
        rc = _fetchmail_rc(tmp_path, srv, implicit_tls=implicit_tls, keep=True)
        code, log = await _fetchmail(tmp_path, fetchmail, rc)
        assert code == 0, log.decode(errors="replace")
        assert await remaining(srv, appended[0].mailbox_id) == 2  # keep: nothing deleted
        kept = _fetched(tmp_path)
        for p in (tmp_path / "fetched").iterdir():
            p.unlink()
        rc.write_text(rc.read_text().replace("  keep fetchall", "  nokeep fetchall"))
        code, log = await _fetchmail(tmp_path, fetchmail, rc)
        assert code == 0, log.decode(errors="replace")
        assert await remaining(srv, appended[0].mailbox_id) == 0
        deleted = _fetched(tmp_path)
    assert kept == sorted(_unix(m) for m in sent)
    assert deleted == kept


# --- getmail6 ---------------------------------------------------------------------------------


def _getmail_rc(tmp_path: Path, srv: Server, *, delete: bool) -> Path:
    out = tmp_path / "fetched"
    out.mkdir()
    rc = tmp_path / "getmailrc"
    # An external MDA rather than getmail's Maildir writer, which will not deliver as root; the
    # message reaches the command on standard input exactly as getmail would store it.
    rc.write_text(
        "[retriever]\n"
        "type = SimplePOP3SSLRetriever\n"
        f"server = 127.0.0.1\nport = {srv.pop3s}\n"
        f"username = {ALICE}\npassword = {PASSWORD}\n"
        f"ca_certs = {srv.cert}\n"
        "[destination]\ntype = MDA_external\npath = /bin/sh\n"
        f'arguments = ("-c", "exec cat > {out}/msg.$$")\n'
        "allow_root_commands = true\nunixfrom = false\n"
        "[options]\n"
        f"delete = {'true' if delete else 'false'}\n"
        "read_all = true\nreceived = false\ndelivered_to = false\n"
    )
    return rc


async def _getmail(tmp_path: Path, program: str, rc: Path) -> tuple[int, bytes]:
    gm = tmp_path / "getmail"
    gm.mkdir(exist_ok=True)
    code, out, err = await run(
        program, "--getmaildir", str(gm), "--rcfile", str(rc), env={"HOME": str(tmp_path)}
    )
    return code, out + err


@pytest.mark.parametrize("delete", [False, True], ids=["keep", "delete"])
async def test_getmail_retrieves(tmp_path: Path, need_program: NeedProgram, delete: bool) -> None:
    getmail = need_program("getmail")
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user(ALICE)
        sent = [message("first"), DOTTY]
        appended = await srv.deliver(alice, *sent)
        code, log = await _getmail(tmp_path, getmail, _getmail_rc(tmp_path, srv, delete=delete))
        assert code == 0, log.decode(errors="replace")
        left = await remaining(srv, appended[0].mailbox_id)
    assert left == (0 if delete else 2)
    # getmail always records the envelope sender it found as a first header line; POP3 has no
    # envelope, so it is "<unknown>". Everything after it is the message as delivered.
    prefix = b"Return-Path: <unknown>\n"
    got = _fetched(tmp_path)
    assert all(m.startswith(prefix) for m in got)
    assert sorted(m.removeprefix(prefix) for m in got) == sorted(_unix(m) for m in sent)
