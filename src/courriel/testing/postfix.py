"""A private Debian Postfix for tests: the receiving MTA of the relay tests, on loopback port 25.

Theory of operation
-------------------
``start_postfix`` writes ``main.cf`` and ``master.cf`` into a directory of its own and runs
``postfix -c <dir> start`` as root: configuration, queue and data directories all live under
the test's temporary directory, the only ``inet`` service is ``smtpd`` on ``address:port``, and
nothing is chrooted, so the system's ``/etc/postfix`` and spool are neither read nor written.

It receives like an internet MX: ``virtual_mailbox_domains`` are its domains, each listed
address has a Maildir under ``vmail/<domain>/<user>/`` (``virtual`` delivery, owned by
``nobody``), an unknown user is refused with 550 5.1.1, a foreign domain with 554 5.7.1 (no
address is a trusted network), and STARTTLS is offered with the certificate given. It logs to
``postfix.log`` (``connections()`` counts the sessions ended there, so a test can tell one
reused connection from several). ``delivered(address)`` waits for Maildir files.

``MASTER_CF`` is also used by the benchmark's Postfix (``bench/servers/postfix.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
virtual   unix  - n n -    - virtual
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
"""

_MAIN = """\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = {hostname}
myorigin = $myhostname
mydestination =
append_dot_mydomain = no
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.255.255.254/32
# master.cf binds the one address; "all" because Postfix insists the interfaces it is told
# about are configured ones, and 127.0.0.2 is only routed to lo, not assigned to it.
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
biff = no
smtputf8_enable = yes
message_size_limit = {size_limit}
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_mailbox_limit = 0
smtpd_tls_security_level = may
smtpd_tls_chain_files = {key}, {cert}
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
maillog_file = {log}
maillog_file_prefixes = {root}
"""


def program() -> str | None:
    return shutil.which("postfix") or shutil.which("/usr/sbin/postfix")


def available() -> bool:
    return program() is not None and os.geteuid() == 0


@dataclass
class Postfix:
    root: Path
    conf: Path
    vmail: Path
    address: str
    port: int
    cert: Path  # the certificate chain smtpd presents

    @property
    def log(self) -> Path:
        return self.root / "postfix.log"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def connections(self) -> int:
        """SMTP sessions that said EHLO or HELO (the start-up probe of the port does not)."""
        ended = [ln for ln in self.log_text().splitlines() if "]: disconnect from " in ln]
        return sum(1 for ln in ended if " ehlo=" in ln or " helo=" in ln)

    def maildir(self, address: str) -> Path:
        user, _, domain = address.partition("@")
        return self.vmail / domain / user / "new"

    def messages(self, address: str) -> list[bytes]:
        box = self.maildir(address)
        if not box.is_dir():
            return []
        return [p.read_bytes() for p in sorted(box.iterdir())]

    async def delivered(self, address: str, count: int = 1, seconds: float = 20) -> list[bytes]:
        """``address``'s Maildir files once there are ``count``; fails after ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.messages(address)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"{address}: {len(self.messages(address))} of {count} delivered")

    def stop(self) -> None:
        subprocess.run(
            ["postfix", "-c", str(self.conf), "stop"], capture_output=True, timeout=60, check=False
        )


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {(done.stderr or done.stdout).strip()[-500:]}")


async def _wait_port(address: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"Postfix does not listen on {address}:{port} after {seconds} s")


def _dirs(*paths: Path, owner: str | None = None, mode: int = 0o755) -> None:
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if owner is not None:
            user = pwd.getpwnam(owner)
            os.chown(path, user.pw_uid, user.pw_gid)


@contextlib.asynccontextmanager
async def start_postfix(
    root: Path,
    *,
    address: str,
    domains: Sequence[str],
    users: Sequence[str],
    cert: Path,
    key: Path,
    port: int = 25,
    hostname: str = "postfix.receiver.test",
    size_limit: int = 10_240_000,
    vmail: Path | None = None,
    extra_main: str = "",
    extra_master: str = "",
) -> AsyncIterator[Postfix]:
    """Postfix receiving for ``users`` at ``address:port`` until the block ends.

    ``vmail`` puts the Maildirs elsewhere (where a Dovecot reads them); ``extra_main`` and
    ``extra_master`` are appended to main.cf and master.cf (a submission service, say)."""
    nobody = pwd.getpwnam("nobody")
    conf, spool, data = root / "conf", root / "spool", root / "data"
    vmail = vmail or root / "vmail"
    _dirs(conf, spool)
    _dirs(data, owner="postfix", mode=0o700)
    _dirs(vmail, owner="nobody")
    (conf / "vmailbox").write_text(
        "".join(f"{u} {u.split('@')[1]}/{u.split('@')[0]}/\n" for u in users)
    )
    values = {
        "spool": spool,
        "data": data,
        "hostname": hostname,
        "host": address,
        "port": port,
        "domains": " ".join(domains),
        "vmail": vmail,
        "conf": conf,
        "uid": nobody.pw_uid,
        "gid": nobody.pw_gid,
        "cert": cert,
        "key": key,
        "log": root / "postfix.log",
        "root": root,
        "size_limit": size_limit,
    }
    (conf / "main.cf").write_text(_MAIN.format(**values) + extra_main)
    (conf / "master.cf").write_text(MASTER_CF.format(**values) + extra_master)
    postfix = ["postfix", "-c", str(conf)]
    await asyncio.to_thread(
        _run, [*postfix, "set-permissions", "create-missing"], "set-permissions"
    )
    await asyncio.to_thread(_run, [*postfix, "start"], "postfix start")
    instance = Postfix(root, conf, vmail, address, port, cert)
    try:
        await _wait_port(address, port, 30)
        yield instance
    finally:
        instance.stop()
