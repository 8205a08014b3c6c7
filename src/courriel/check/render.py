"""A report as text for people (live, step by step) or as JSON for scripts.

Theory of operation
-------------------
``LivePrinter`` is a ``report.Progress`` callback: it prints a section's heading when the
section changes and one line per finished step, so a person watches the check run; the causes
and fixes follow the step that needs them. On a terminal the status words are coloured and the
step that is running shows on a line of its own until it ends (``starting``); elsewhere (a
pipe, a log) the lines are plain text, one per finished step. ``summary`` is the closing verdict;
``text`` renders a whole report at once (the web admin, and the server-side check, which has
no live part worth showing).
"""

from __future__ import annotations

import json
from typing import TextIO

from courriel.check.report import Report, Status, Step

_WORDS = {Status.OK: "ok", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "-"}
_COLOURS = {Status.OK: "32", Status.WARN: "33", Status.FAIL: "31;1", Status.SKIP: "2"}


def _seconds(step: Step) -> str:
    if step.seconds is None:
        return ""
    if step.seconds < 1:
        return f"  ({step.seconds * 1000:.0f} ms)"
    return f"  ({step.seconds:.2f} s)"


def step_lines(step: Step, colour: bool = False) -> list[str]:
    word = _WORDS[step.status]
    shown = f"{word:<4}"
    if colour:
        shown = f"\033[{_COLOURS[step.status]}m{shown}\033[0m"
    detail = f": {step.detail}" if step.detail else ""
    lines = [f"  {shown}  {step.name}{detail}{_seconds(step)}"]
    if step.explanation is not None:
        lines.append(f"        cause: {step.explanation.cause}")
        lines.append(f"        fix:   {step.explanation.fix}")
    return lines


class LivePrinter:
    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.section = ""
        self.pending = False  # a "running" line is on the terminal, to be overwritten

    def starting(self, section: str, name: str) -> None:
        """On a terminal: the step now running, on a line the next output replaces."""
        if not self.tty:
            return
        self._clear()
        self.out.write(f"  ...   {section}: {name}")
        self.out.flush()
        self.pending = True

    def _clear(self) -> None:
        if self.pending:
            self.out.write("\r\033[K")  # back to the line's start, erase it
            self.pending = False

    def __call__(self, step: Step) -> None:
        self._clear()
        if step.section != self.section:
            self.section = step.section
            self.out.write(f"\n{step.section}\n")
        self.out.write("\n".join(step_lines(step, self.tty)) + "\n")
        self.out.flush()


def summary(report: Report) -> str:
    failed = sum(s.status is Status.FAIL for s in report.steps)
    warned = sum(s.status is Status.WARN for s in report.steps)
    passed = sum(s.status is Status.OK for s in report.steps)
    if failed:
        verdict = f"FAILED: {failed} failed, {warned} warnings, {passed} passed"
    elif warned:
        verdict = f"passed with {warned} warnings ({passed} passed)"
    else:
        verdict = f"all {passed} checks passed"
    return f"\n{report.title}: {verdict}\n"


def text(report: Report) -> str:
    lines = [report.title]
    section = ""
    for step in report.steps:
        if step.section != section:
            section = step.section
            lines += ["", section]
        lines += step_lines(step)
    return "\n".join(lines) + "\n" + summary(report)


def as_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2)
