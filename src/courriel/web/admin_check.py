"""The status page's "Run the server check": ``courriel check --server`` in the web admin.

Theory of operation
-------------------
The check is ``courriel.check.server.report``, the very function the command line runs, so the
page shows the same steps, verdicts, causes and fixes (the explanations live once, in
``check.explain``). It looks up DNS and connects to every listener, so it takes seconds: it runs
on the event loop as a coroutine (its blocking parts go to threads inside ``report``), each step
is bounded by ``STEP_SECONDS`` and the whole run by ``TOTAL_SECONDS``. The steps are collected
as they finish, so a run that hits the bound still shows what it found, followed by the reason
it stopped. One run at a time per worker: a second click while one runs is refused rather than
doubling the DNS queries and connections. Each run is written to the audit log with its verdict.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass

from courriel import admin_access
from courriel.check import server
from courriel.check.render import summary
from courriel.check.report import Report, Step
from courriel.config import Config
from courriel.logs import kv
from courriel.store.base import Store

log = logging.getLogger("courriel.web.admin")

STEP_SECONDS = 5.0  # one DNS query, one connect, one SMTP exchange
TOTAL_SECONDS = 60.0  # the whole check; a browser and a proxy wait this long


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    steps: list[Step]


@dataclass(frozen=True, slots=True)
class CheckRun:
    """What the page shows: the steps in sections, the verdict, and why it stopped early."""

    sections: list[Section]
    verdict: str
    passed: bool
    stopped: str = ""  # empty when the check ran to its end


def sections_of(steps: list[Step]) -> list[Section]:
    """Consecutive steps of one section together, in the order they ran."""
    return [
        Section(name, list(group)) for name, group in itertools.groupby(steps, lambda s: s.section)
    ]


class ServerCheck:
    def __init__(self, cfg: Config, store: Store, total_seconds: float = TOTAL_SECONDS) -> None:
        self.cfg = cfg
        self.store = store
        self.total_seconds = total_seconds
        self.running = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return self.running.locked()

    async def run(self, actor: str) -> CheckRun:
        """Runs the check for ``actor`` (who is named in the audit log)."""
        async with self.running:
            steps: list[Step] = []
            stopped = ""
            try:
                async with asyncio.timeout(self.total_seconds):
                    await server.report(
                        self.cfg,
                        self.store,
                        step_seconds=STEP_SECONDS,
                        progress=steps.append,
                    )
            except TimeoutError:
                stopped = (
                    f"The check was stopped after {self.total_seconds:g} seconds; "
                    "the steps above are those that finished."
                )
                log.info("server check stopped at its time limit", extra=kv(actor=actor))
            # A copy: on a timeout, a step still running in its thread may add itself later.
            found = list(steps)
        done = Report(f"courriel check --server ({self.cfg.hostname})", found)
        verdict = summary(done).strip()
        if stopped:
            verdict += " (stopped early)"
        await admin_access.audit(self.store, actor, "server check", verdict)
        return CheckRun(sections_of(found), verdict, done.passed and not stopped, stopped)
