"""A private Debian Dovecot for tests: IMAP and POP3 on loopback ports, users from a file.

Theory of operation
-------------------
``start_dovecot`` writes a ``dovecot.conf`` of its own into the test's directory and runs
``dovecot -F -c <conf>`` in the foreground: its run, state and mail directories all live there,
so the system's ``/etc/dovecot`` is never read. It listens on ``address`` -- 127.0.0.3 by
default, not 127.0.0.1: Dovecot counts a connection whose two ends have the same address as
secure and would take passwords before TLS on it -- with four free ports
(imap, imaps, pop3, pop3s), presents the certificate given, refuses passwords before TLS
(``disable_plaintext_auth``), and knows the users of a ``passwd-file`` (plain-text passwords:
test accounts only), whose mail is Maildir under ``mail/<domain>/<user>`` owned by ``nobody``
(where a private Postfix's ``virtual`` delivery writes too). Its auth service also listens on
``auth-client`` in the run directory, for a Postfix that checks passwords through it (SASL).
``stop`` ends the process by its id. Dovecot runs as root here (it drops privileges itself).
"""

from __future__ import annotations

import contextlib
import grp
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from courriel.testing.net import free_ports

_CONF = """\
protocols = imap pop3
listen = {address}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%d/%n
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
}}
pop3_uidl_format = %08Xu%08Xv
"""


def program() -> str | None:
    return shutil.which("dovecot") or shutil.which("/usr/sbin/dovecot")


@dataclass
class Dovecot:
    root: Path
    address: str
    ports: dict[str, int]  # imap, imaps, pop3, pop3s
    process: subprocess.Popen[bytes]

    @property
    def auth_socket(self) -> Path:
        return self.root / "run" / "auth-client"

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    def log_text(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait(address: str, port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"dovecot does not listen on {address}:{port} after {seconds} s")


@contextlib.contextmanager
def start_dovecot(
    root: Path,
    *,
    users: Mapping[str, str],
    cert: Path,
    key: Path,
    address: str = "127.0.0.3",
) -> Iterator[Dovecot]:
    """Dovecot serving ``users`` (address -> password) until the block ends."""
    path = program()
    if path is None:
        raise FileNotFoundError("dovecot is not installed")
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(exist_ok=True)
    for sub in ("mail", "home"):
        shutil.chown(root / sub, nobody.pw_uid, nobody.pw_gid)
    (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
    ports = dict(zip(("imap", "imaps", "pop3", "pop3s"), free_ports(4), strict=True))
    conf = root / "dovecot.conf"
    conf.write_text(
        _CONF.format(
            root=root,
            address=address,
            cert=cert,
            key=key,
            uid=nobody.pw_uid,
            gid=group.gr_gid,
            **ports,
        )
    )
    process = subprocess.Popen(
        [path, "-F", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    instance = Dovecot(root, address, ports, process)
    try:
        try:
            for port in ports.values():
                _wait(address, port, process, 20)
        except RuntimeError as e:
            err = (
                process.stderr.read().decode(errors="replace")
                if process.poll() is not None and process.stderr
                else ""
            )
            raise RuntimeError(f"{e}: {err.strip()} {instance.log_text()[-800:]}") from None
        yield instance
    finally:
        instance.stop()
        if process.stderr is not None:
            process.stderr.close()
