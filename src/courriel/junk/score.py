"""The junk score of a message for each recipient, and the header fields that explain it.

Theory of operation
-------------------
A message's score is the sum of the points of the reasons found for it (SpamAssassin's
scheme, which administrators know how to read):

* its SPF, DKIM and DMARC results (``auth_reasons``): DMARC_FAIL 3.0, SPF_FAIL 1.0,
  SPF_SOFTFAIL 0.5, DKIM_FAIL 1.0 (a signature failed and none passed), DMARC_PASS -1.0;
* the heuristics of ``courriel.junk.heuristics``;
* per recipient, their Bayesian filter's probability (``bayes_reason``), from BAYES_00
  (-3.0, surely ham) to BAYES_95 (+5.0) and BAYES_99 (+6.0, surely junk); an untrained filter
  adds nothing.

The message goes to the recipient's Junk mailbox when the score reaches their threshold (their
own, else ``[junk] threshold``, 5.0), or when DMARC said quarantine. ``fields`` renders the
result as ``X-Spam-Score``, ``X-Spam-Status`` (``Yes``/``No``, the score, the threshold and the
tests with their points) and ``X-Spam-Report`` (each reason in words), put right above the
Authentication-Results field. Fields of those names that arrived with the message are removed
first (``strip_spam_fields``): only ours may be believed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from courriel.junk.bayes import BayesResult
from courriel.junk.heuristics import Reason
from courriel.mail.auth.dkim import Outcome
from courriel.mail.auth.dmarc import DmarcOutcome
from courriel.mail.auth.inbound import Verdict
from courriel.mail.auth.spf import SpfOutcome

# (lowest probability, name, points), highest first. SpamAssassin's band names; the points
# are higher than its defaults because here the filter is the user's own, trained by their
# actions: 95% alone reaches the default threshold (mox files at 95% too).
_BAYES_BANDS = (
    (0.99, "BAYES_99", 6.0),
    (0.95, "BAYES_95", 5.0),
    (0.80, "BAYES_80", 3.0),
    (0.60, "BAYES_60", 1.0),
    (0.40, "BAYES_50", 0.0),
    (0.20, "BAYES_20", -0.5),
    (0.05, "BAYES_05", -1.0),
    (0.01, "BAYES_01", -2.0),
    (0.0, "BAYES_00", -3.0),
)
_SPAM_FIELD = re.compile(rb"^x-spam-[a-z-]*:", re.IGNORECASE)
_FOLD = 76
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")


@dataclass(frozen=True, slots=True)
class Score:
    points: float
    threshold: float
    reasons: tuple[Reason, ...]
    forced: str = ""  # why the message goes to Junk whatever its score (DMARC quarantine)

    @property
    def junk(self) -> bool:
        return bool(self.forced) or self.points >= self.threshold


def auth_reasons(verdict: Verdict | None) -> list[Reason]:
    if verdict is None:
        return []
    out: list[Reason] = []
    dmarc = verdict.dmarc
    if dmarc is not None and dmarc.outcome is DmarcOutcome.FAIL:
        out.append(Reason("DMARC_FAIL", 3.0, f"DMARC fails: {dmarc.explanation}"))
    elif dmarc is not None and dmarc.outcome is DmarcOutcome.PASS:
        out.append(Reason("DMARC_PASS", -1.0, f"DMARC passes for {dmarc.from_domain}"))
    spf = verdict.spf
    if spf is not None and spf.outcome is SpfOutcome.FAIL:
        out.append(Reason("SPF_FAIL", 1.0, f"SPF fails: {spf.sentence}"))
    elif spf is not None and spf.outcome is SpfOutcome.SOFTFAIL:
        out.append(Reason("SPF_SOFTFAIL", 0.5, f"SPF soft-fails: {spf.sentence}"))
    outcomes = {s.outcome for s in verdict.dkim}
    if Outcome.FAIL in outcomes and Outcome.PASS not in outcomes:
        out.append(Reason("DKIM_FAIL", 1.0, "the DKIM signature does not verify"))
    return out


def bayes_reason(result: BayesResult) -> Reason | None:
    p = result.probability
    if p is None:
        return None
    for floor, name, points in _BAYES_BANDS:
        if p >= floor:
            clues = ", ".join(t for t, _ in result.clues[:3])
            said = f" (strongest words: {clues})" if clues else ""
            return Reason(name, points, f"the recipient's filter says {p:.1%} junk{said}")
    return None  # unreachable: the last band starts at 0


def total(reasons: Sequence[Reason], threshold: float, forced: str = "") -> Score:
    points = round(sum(r.points for r in reasons), 1)
    return Score(points, threshold, tuple(reasons), forced)


def _folded(name: str, words: Sequence[str]) -> bytes:
    """One header field of ``words``, folded; words hold no white space (they were split on
    it), and anything but printable ASCII -- a sender's address or words in the reasons --
    becomes "?", so the field is plain RFC 5322 whatever the message held."""
    lines: list[str] = []
    line = f"{name}:"
    for word in (_UNPRINTABLE.sub("?", w)[:_FOLD] for w in words):
        if len(line) + 1 + len(word) > _FOLD and line.strip():
            lines.append(line)
            line = "\t" + word
        else:
            line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace")


def fields(score: Score) -> bytes:
    """The X-Spam-* fields (CRLF-terminated) explaining ``score``."""
    tests = [f"{r.name}({r.points:+.1f})" for r in score.reasons] or ["none"]
    status = [
        ("Yes," if score.junk else "No,"),
        f"score={score.points:.1f}",
        f"required={score.threshold:.1f}",
        "tests=" + tests[0],
        *tests[1:],
    ]
    report = [f"{r.name}: {r.text};" for r in score.reasons]
    if score.forced:
        report.append(f"sent to Junk: {score.forced}")
    out = f"X-Spam-Score: {score.points:.1f}\r\n".encode()
    out += _folded("X-Spam-Status", status)
    if report:
        out += _folded("X-Spam-Report", " ".join(report).split())
    return out


def strip_spam_fields(message: bytes) -> bytes:
    """``message`` without the X-Spam-* fields of its header (see the module docstring)."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message
    head = message[: end + 2].split(b"\r\n")
    kept: list[bytes] = []
    dropping = False
    for line in head:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = bool(_SPAM_FIELD.match(line))
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept) + message[end + 2 :]
