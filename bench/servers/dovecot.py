"""A private Dovecot: IMAP and POP3 on loopback, Maildirs shared with the private Postfix.

Theory of operation
-------------------
``start`` writes ``dovecot.conf`` into its own directory and runs ``dovecot -F -c <conf>`` as a
child process (the foreground master), so the system's ``/etc/dovecot`` is never read and
stopping is a SIGTERM to our child. ``base_dir``, ``state_dir`` and the log file live in the same
directory; the instance name is unique, so ``doveadm`` and a system Dovecot cannot mix them up.

IMAP and POP3 listen with implicit TLS only (``imaps``/``pop3s``, a self-signed certificate
made for the run), as courriel's do, so both pay for the same encryption. Accounts come from a
passwd-file holding the same argon2id hashes courriel stores (Dovecot's ``ARGON2ID`` scheme
reads the PHC strings argon2-cffi makes), so both servers pay the same price per login. Mail is
``maildir:<vmail>/%d/%n`` owned by ``nobody``. Limits are raised so 1,000 IDLE sessions from one
address fit (``mail_max_userip_connections`` and the process limits); everything else is
Dovecot's default, including its one-process-per-session IMAP model and
``mail_fsync = optimized``.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench.servers import (
    HOST,
    Endpoints,
    ServerError,
    free_ports,
    make_dirs,
    process_tree,
    run_quiet,
    spawn,
    terminate,
    wait_port,
)
from courriel.net.tls import make_self_signed

MAX_SESSIONS = 1200

_CONF = """\
instance_name = {instance}
base_dir = {run}
state_dir = {state}
log_path = {log}
info_log_path = {log}
protocols = imap pop3
listen = {host}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{vmail}/%d/%n
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
default_process_limit = {limit}
default_client_limit = {clients}
default_vsz_limit = 1G
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={vmail}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = {host}
    port = {imap}
  }}
  process_limit = {limit}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    address = {host}
    port = {pop3}
  }}
}}
service imap {{
  process_limit = {limit}
}}
service auth {{
  client_limit = {clients}
}}
service anvil {{
  client_limit = {clients}
}}
protocol imap {{
  mail_max_userip_connections = {limit}
}}
protocol pop3 {{
  mail_max_userip_connections = {limit}
}}
"""


def available() -> bool:
    return shutil.which("dovecot") is not None


def version() -> str:
    try:
        return run_quiet(["dovecot", "--version"], "dovecot --version").split()[0]
    except ServerError:
        return "unknown"


class Dovecot:
    name = "dovecot"

    def __init__(self, proc: subprocess.Popen[bytes], endpoints: Endpoints, log: Path) -> None:
        self.proc = proc
        self.endpoints = endpoints
        self.log = log

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    async def stop(self) -> None:
        await terminate(self.proc)


def write_users(path: Path, accounts: Sequence[tuple[str, str]]) -> None:
    """The passwd-file: ``address:{ARGON2ID}<PHC hash>`` per line."""
    path.write_text("".join(f"{addr}:{{ARGON2ID}}{h}\n" for addr, h in accounts))
    path.chmod(0o644)


async def start(root: Path, vmail: Path, accounts: Sequence[tuple[str, str]]) -> Dovecot:
    """Starts the private instance in ``root`` (created) serving the Maildirs under ``vmail``."""
    nobody = pwd.getpwnam("nobody")
    for sub in ("run", "state"):
        make_dirs(root / sub, 0, 0)
    users = root / "users"
    write_users(users, accounts)
    imap, pop3 = free_ports(2)
    cert, key = make_self_signed("dovecot.example.test")
    (root / "cert.pem").write_bytes(cert)
    (root / "key.pem").touch(mode=0o600)
    (root / "key.pem").write_bytes(key)
    conf = root / "dovecot.conf"
    log = root / "dovecot.log"
    conf.write_text(
        _CONF.format(
            instance=f"bench-{uuid.uuid4().hex[:8]}",
            run=root / "run",
            state=root / "state",
            log=log,
            host=HOST,
            vmail=vmail,
            uid=nobody.pw_uid,
            gid=nobody.pw_gid,
            limit=MAX_SESSIONS,
            clients=MAX_SESSIONS * 4,
            users=users,
            imap=imap,
            pop3=pop3,
            cert=root / "cert.pem",
            key=root / "key.pem",
        )
    )
    run_quiet(["doveconf", "-c", str(conf), "-n"], "doveconf (checking dovecot.conf)")
    proc = spawn(["dovecot", "-F", "-c", str(conf)], root / "stdout.log")
    instance = Dovecot(proc, Endpoints(imap=imap, pop3=pop3), log)
    try:
        await wait_port(imap, 20, proc)
        await wait_port(pop3, 20, proc)
    except ServerError:
        await instance.stop()
        raise
    return instance
