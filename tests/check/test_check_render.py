"""The live printer: plain lines in a pipe, a transient "running" line and colours on a terminal."""

from __future__ import annotations

import io

from courriel.check import explain, render
from courriel.check.report import Report


def run(tty: bool) -> tuple[str, Report]:
    out = io.StringIO()
    printer = render.LivePrinter(out, tty=tty)
    report = Report("courriel check alice@example.org", progress=printer, starting=printer.starting)
    report.begin("IMAP mail.example.org:993 (imaps)", "connect")
    report.ok("IMAP mail.example.org:993 (imaps)", "connect", "answered", 0.012)
    report.begin("IMAP mail.example.org:993 (imaps)", "login")
    report.fail("IMAP mail.example.org:993 (imaps)", "login", explain.LOGIN_REFUSED, "NO", 2.5)
    return out.getvalue(), report


def test_plain_lines_when_not_a_terminal() -> None:
    text, report = run(tty=False)
    assert text == (
        "\nIMAP mail.example.org:993 (imaps)\n"
        "  ok    connect: answered  (12 ms)\n"
        "  FAIL  login: NO  (2.50 s)\n"
        f"        cause: {explain.LOGIN_REFUSED.cause}\n"
        f"        fix:   {explain.LOGIN_REFUSED.fix}\n"
    )
    assert not report.passed
    assert render.summary(report) == (
        "\ncourriel check alice@example.org: FAILED: 1 failed, 0 warnings, 1 passed\n"
    )


def test_running_step_shown_then_replaced_on_a_terminal() -> None:
    text, _ = run(tty=True)
    assert text.startswith("  ...   IMAP mail.example.org:993 (imaps): connect\r\033[K\n")
    assert "\033[32mok  \033[0m  connect: answered" in text
    assert "  ...   IMAP mail.example.org:993 (imaps): login\r\033[K" in text
    assert "\033[31;1mFAIL\033[0m  login: NO" in text
