"""What a check found: steps grouped in sections, each with a status, a time and an explanation.

Theory of operation
-------------------
A ``Report`` is built step by step; ``Report.add`` hands each finished step to the ``Progress``
callback as well, so a terminal shows it while the next step runs, and ``Report.begin`` names a
step that is about to take its time (a connect, a login, the wait for delivery). ``passed`` is
true only when no step failed (warnings pass: an accepted self-signed certificate is a warning,
not a failure).
``to_json`` gives the structure scripts read; its keys are part of the command's interface.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from courriel.check.explain import Explanation


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # not run, because an earlier step failed or it does not apply


@dataclass(frozen=True, slots=True)
class Step:
    section: str  # "IMAP 993 (imaps)", "discovery", "DNS", ...
    name: str  # "connect", "TLS", "login", ...
    status: Status
    detail: str = ""  # what was seen, for people
    seconds: float | None = None
    explanation: Explanation | None = None
    data: dict[str, Any] = field(default_factory=dict)  # extra facts for scripts

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "section": self.section,
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "seconds": None if self.seconds is None else round(self.seconds, 4),
        }
        if self.explanation is not None:
            out["problem"] = self.explanation.key
            out["cause"] = self.explanation.cause
            out["fix"] = self.explanation.fix
        if self.data:
            out["data"] = self.data
        return out


Progress = Callable[[Step], None]
Starting = Callable[[str, str], None]  # (section, step name) of a step about to run


def _quiet(step: Step) -> None:
    """The default progress callback: nobody is watching."""


def _silent(section: str, name: str) -> None:
    """The default start callback."""


@dataclass
class Report:
    title: str
    steps: list[Step] = field(default_factory=list)
    progress: Progress = _quiet
    starting: Starting = _silent

    def begin(self, section: str, name: str) -> None:
        """Says that a step that may take a while starts now (a terminal shows it)."""
        self.starting(section, name)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        self.progress(step)
        return step

    def ok(self, section: str, name: str, detail: str = "", seconds: float | None = None) -> Step:
        return self.add(Step(section, name, Status.OK, detail, seconds))

    def fail(
        self,
        section: str,
        name: str,
        explanation: Explanation,
        detail: str = "",
        seconds: float | None = None,
    ) -> Step:
        return self.add(Step(section, name, Status.FAIL, detail, seconds, explanation))

    def warn(
        self,
        section: str,
        name: str,
        explanation: Explanation,
        detail: str = "",
        seconds: float | None = None,
    ) -> Step:
        return self.add(Step(section, name, Status.WARN, detail, seconds, explanation))

    def skip(self, section: str, name: str, detail: str) -> Step:
        return self.add(Step(section, name, Status.SKIP, detail))

    @property
    def passed(self) -> bool:
        return not any(s.status is Status.FAIL for s in self.steps)

    def problems(self) -> list[Step]:
        return [s for s in self.steps if s.status in (Status.FAIL, Status.WARN)]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "passed": self.passed,
            "steps": [s.to_json() for s in self.steps],
        }
