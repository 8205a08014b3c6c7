"""Debian's Rspamd on loopback for tests, with a configuration of its own and rules a test gives.

Theory of operation
-------------------
``RspamdServer`` writes a minimal configuration into a directory of the test's: one normal
worker on a free loopback port, the actions courriel reads (``greylist`` 4, ``add header`` 6,
``reject`` 15), the test's Lua rules, and nothing that reaches out: DNS goes to a port where
nothing answers, hyperscan is off and the public-suffix list holds two entries, so it starts in
well under a second rather than the half minute its full configuration takes. It waits until
``/ping`` answers and stops the process at the end. Run as root, Rspamd's workers must drop to
its own user (``_rspamd``), which then needs to read the directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from courriel.testing.net import LOOPBACK, free_port

CONFIG = """\
options {{
  pidfile = "{dir}/rspamd.pid";
  disable_hyperscan = true;
  url_tld = "{dir}/tld.dat";
  dns {{ nameserver = ["127.0.0.1:9"]; timeout = 0.5s; retransmits = 1; }}
}}
logging {{ type = "console"; level = "error"; }}
worker "normal" {{ bind_socket = "{address}:{port}"; count = 1; }}
actions {{ reject = 15; "add header" = 6; greylist = 4; }}
lua = "{dir}/rules.lua";
"""


def rspamd_program() -> str | None:
    return shutil.which("rspamd") or shutil.which("/usr/bin/rspamd")


class RspamdServer:
    def __init__(self, program: str, directory: Path, rules: str) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        (directory / "tld.dat").write_text("test\ncom\n")
        (directory / "rules.lua").write_text(rules)
        config = CONFIG.format(dir=directory, address=LOOPBACK, port=self.port)
        (directory / "rspamd.conf").write_text(config)
        self._args = [program, "-f", "-c", str(directory / "rspamd.conf")]
        if os.geteuid() == 0:
            self._args += ["-u", "_rspamd", "-g", "_rspamd"]
            for path in (directory, *directory.iterdir()):
                path.chmod(0o755 if path.is_dir() else 0o644)
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RspamdServer:
        self._proc = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"rspamd exited: {err.strip()}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as reply:  # noqa: S310
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("rspamd did not answer within 20 seconds")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
