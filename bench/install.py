"""Making sure Dovecot and Postfix are there to compare with, without touching the system's own.

Theory of operation
-------------------
The comparison needs the Debian packages ``dovecot-imapd``, ``dovecot-pop3d`` and ``postfix``,
and root (Postfix's master and Dovecot's master switch to their own unprivileged users).
``comparison_problems`` returns, per server, the sentence shown in its column when it cannot
take part; an empty answer means both are ready.

Missing packages are installed with ``apt-get`` only when running as root *and* the machine's
``policy-rc.d`` forbids package scripts to start services: installing Debian's packages would
otherwise start the system's own Dovecot and Postfix, which this suite must never do. Elsewhere
the message says which command to run by hand. The private instances never use the system's
configuration either way (``bench.servers``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.servers import dovecot, postfix

PACKAGES = ("dovecot-imapd", "dovecot-pop3d", "postfix")
POLICY = Path("/usr/sbin/policy-rc.d")
SERVERS = ("dovecot", "postfix")


def missing_packages() -> list[str]:
    out = []
    for pkg in PACKAGES:
        try:
            done = subprocess.run(
                ["dpkg-query", "-W", "-f=${Status}", pkg],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            out.append(pkg)
            continue
        if "install ok installed" not in done.stdout:
            out.append(pkg)
    return out


def services_blocked() -> bool:
    """True when Debian package scripts may not start services here (policy-rc.d says 101)."""
    if not os.access(POLICY, os.X_OK):
        return False
    try:
        done = subprocess.run([str(POLICY), "dovecot", "start"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 101  # invoke-rc.d's "action forbidden by policy"


def _apt_install(packages: list[str]) -> str | None:
    """Installs ``packages``; None on success, else why not."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing {' '.join(packages)} with apt-get ...", flush=True)
    try:
        done = subprocess.run(
            ["apt-get", "install", "-y", "-q", *packages],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"apt-get failed: {e}"
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
        return f"apt-get install failed: {tail}"
    return None


def comparison_problems() -> dict[str, str]:
    """Server -> why it cannot be compared; empty when Dovecot and Postfix are both ready."""
    if os.geteuid() != 0:
        why = "not root, comparison skipped (private Dovecot and Postfix instances need root)"
        return {s: f"{s}: {why}" for s in SERVERS}
    if shutil.which("dpkg-query") is None:
        ready = dovecot.available() and postfix.available()
        why = "not installed (install Dovecot and Postfix with your package manager)"
        return {} if ready else {s: f"{s}: {why}" for s in SERVERS}
    missing = missing_packages()
    if missing:
        if not services_blocked() or shutil.which("apt-get") is None:
            why = (
                f"not installed; run 'apt-get install {' '.join(missing)}' yourself (not done "
                "here: it would start the system's own services)"
            )
            return {s: f"{s}: {why}" for s in SERVERS}
        failure = _apt_install(missing)
        if failure is not None:
            return {s: f"{s}: {failure}" for s in SERVERS}
    return {}


def versions(compared: bool) -> dict[str, str]:
    if not compared:
        return {}
    return {"dovecot": dovecot.version(), "postfix": postfix.version()}
