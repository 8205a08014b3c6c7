"""A private Postfix: SMTP on a loopback high port, delivering into Maildirs with ``virtual``.

Theory of operation
-------------------
``start`` writes ``main.cf`` and ``master.cf`` into a directory of its own and runs
``postfix -c <dir> start``: ``config_directory``, ``queue_directory`` and ``data_directory`` are
all under the run's temporary directory, the only ``inet`` service is ``smtpd`` on
127.0.0.1:<free port>, and no service is chrooted, so the system's ``/etc/postfix`` and its
spool are neither read for settings nor written. ``stop`` is ``postfix -c <dir> stop``.

Delivery is Postfix's ``virtual`` agent into ``<vmail>/<domain>/<user>/`` (a trailing slash in
the mailbox map means Maildir), owned by ``nobody`` -- the same directories the private Dovecot
serves. ``queue_empty`` looks at the queue directories themselves, because a message counts as
stored only once it has left the queue and its Maildir file exists. Anvil's per-client limits
are lifted (all load comes from one address); everything else keeps Postfix's defaults,
including its fsync of the queue file before the 250 and of the Maildir file on delivery.

``start_relayer`` is the other role, for the ``relay`` workload: a Postfix that delivers nothing
itself and relays everything its loopback clients send to one next hop (``relayhost``), with
STARTTLS offered to its clients and used towards the next hop when offered (``may`` on both
sides, as courriel does). It trusts 127.0.0.0/8 instead of asking for SASL, which would need a
SASL server (Dovecot's or Cyrus's) beside it.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Sequence
from pathlib import Path

from bench.servers import (
    DOMAIN,
    HOST,
    Endpoints,
    ServerError,
    free_ports,
    make_dirs,
    process_tree,
    run_quiet,
    wait_port,
)
from courriel.testing.postfix import MASTER_CF

QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

_MAIN = """\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.{domain}
mydomain = {domain}
myorigin = $myhostname
mydestination =
append_dot_mydomain = no
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
biff = no
smtputf8_enable = no
message_size_limit = 52428800
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_mailbox_limit = 0
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
maillog_file = {log}
maillog_file_prefixes = {root}
"""


def available() -> bool:
    return shutil.which("postfix") is not None and Path("/usr/sbin/postconf").exists()


def version() -> str:
    try:
        out = run_quiet(["postconf", "-d", "-h", "mail_version"], "postconf mail_version")
    except ServerError:
        return "unknown"
    return out.strip()


class Postfix:
    name = "postfix"

    def __init__(self, conf: Path, spool: Path, endpoints: Endpoints) -> None:
        self.conf = conf
        self.spool = spool
        self.endpoints = endpoints

    def master_pid(self) -> int | None:
        try:
            return int((self.spool / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> list[int]:
        pid = self.master_pid()
        return process_tree(pid) if pid is not None else []

    def queued(self) -> int:
        """Messages still in the queue (any state), counted from the queue directories."""
        total = 0
        for q in QUEUES:
            base = self.spool / q
            if base.exists():
                total += sum(len(files) for _, _, files in os.walk(base))
        return total

    async def stop(self) -> None:
        run_quiet(["postfix", "-c", str(self.conf), "stop"], "postfix stop", timeout=60)


_RELAYER = """\
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
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
relayhost = {relayhost}
biff = no
smtputf8_enable = no
message_size_limit = 52428800
smtpd_tls_security_level = may
smtpd_tls_chain_files = {key}, {cert}
smtp_tls_security_level = may
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
maillog_file = {log}
maillog_file_prefixes = {root}
"""


def _directories(root: Path) -> tuple[Path, Path, Path]:
    conf, spool, data = root / "conf", root / "spool", root / "data"
    make_dirs(conf, 0, 0)
    make_dirs(spool, 0, 0)
    postfix_user = pwd.getpwnam("postfix")
    make_dirs(data, postfix_user.pw_uid, postfix_user.pw_gid, 0o700)
    return conf, spool, data


async def _launch(conf: Path, spool: Path, main: str, values: dict[str, object]) -> Postfix:
    """Writes ``main.cf`` and ``master.cf``, starts the instance and waits for its port."""
    (conf / "main.cf").write_text(main.format(**values))
    (conf / "master.cf").write_text(MASTER_CF.format(**values))
    postfix = ["postfix", "-c", str(conf)]
    run_quiet([*postfix, "set-permissions", "create-missing"], "postfix set-permissions")
    run_quiet([*postfix, "start"], "postfix start")
    port = values["port"]
    assert isinstance(port, int)
    instance = Postfix(conf, spool, Endpoints(smtp=port))
    try:
        await wait_port(port, 30)
    except ServerError:
        await instance.stop()
        raise
    return instance


async def start_relayer(
    root: Path, relayhost: str, cert: Path, key: Path, hostname: str = "relayer.example.test"
) -> Postfix:
    """Starts a relaying instance in ``root`` (created) that sends everything to ``relayhost``
    (``[address]:port``: no MX lookup)."""
    conf, spool, data = _directories(root)
    (port,) = free_ports(1)
    values: dict[str, object] = {
        "spool": spool,
        "data": data,
        "hostname": hostname,
        "host": HOST,
        "port": port,
        "relayhost": relayhost,
        "cert": cert,
        "key": key,
        "log": root / "postfix.log",
        "root": root,
    }
    return await _launch(conf, spool, _RELAYER, values)


async def start(root: Path, vmail: Path, addresses: Sequence[str]) -> Postfix:
    """Starts the private instance in ``root`` (created), delivering under ``vmail``."""
    nobody = pwd.getpwnam("nobody")
    conf, spool, data = _directories(root)
    (port,) = free_ports(1)
    maps = "".join(f"{a} {DOMAIN}/{a.split('@')[0]}/\n" for a in addresses)
    (conf / "vmailbox").write_text(maps)
    values: dict[str, object] = {
        "spool": spool,
        "data": data,
        "domain": DOMAIN,
        "host": HOST,
        "vmail": vmail,
        "conf": conf,
        "uid": nobody.pw_uid,
        "gid": nobody.pw_gid,
        "log": root / "postfix.log",
        "root": root,
        "port": port,
    }
    return await _launch(conf, spool, _MAIN, values)
