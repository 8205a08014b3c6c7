"""Content scoring after DATA: one score per local recipient, from what the message shows.

Theory of operation
-------------------
``JunkFilter.score`` is called by the port 25 session once the SPF/DKIM/DMARC verdict is known
and before the message is stored. It finds the reasons shared by every recipient (the
verdict's, the heuristics') once, tokenises the message once, then reads each recipient's model
for those tokens only (``Store.junk_model``) and adds their Bayesian reason and threshold. The
caller stores each recipient's copy with that recipient's X-Spam fields in INBOX or Junk
(``Score.junk``).

What is read of the message is read once (``examine``): courriel's parse
(``courriel.mail.message.parse``), which the caller reuses for the stored copies, and from it
the view the heuristics and the tokens share (``courriel.junk.view``). The work is bounded
(``view.MAX_TEXT`` characters of text); a message larger than ``tokens.LARGE`` is examined in
a worker thread, a smaller one on the event loop, where it costs less than the hop.

With ``[junk] rspamd_url`` set, Rspamd scores instead (``courriel.junk.rspamd``): its score
and its required score apply to every recipient, and an Rspamd that cannot be reached leaves
the message unscored rather than refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from courriel.config import JunkConfig
from courriel.junk import bayes, heuristics, tokens, view
from courriel.junk import score as scoring
from courriel.junk.heuristics import Reason
from courriel.junk.rspamd import RspamdClient, RspamdError, RspamdRequest
from courriel.logs import kv
from courriel.mail.auth.inbound import Verdict
from courriel.mail.message import MessageMeta, parse
from courriel.store.base import JunkStore

log = logging.getLogger("courriel.junk")


@dataclass(frozen=True, slots=True)
class Arrival:
    """What is known of a message arriving on port 25, besides its bytes."""

    ip: str
    helo: str
    sender: str
    recipients: tuple[str, ...]
    hostname: str


@dataclass(frozen=True, slots=True)
class Content:
    """What scoring reads of a message, read once for every recipient."""

    meta: MessageMeta  # the message's parse, for the stored copies too
    reasons: tuple[Reason, ...]  # the heuristics that fire
    words: tuple[str, ...]  # its tokens; () when the checks failed


def read(message: bytes, now: datetime) -> Content:
    """The message's parse, heuristics and tokens (CPU work: see ``examine``)."""
    meta = parse(message)
    reasons: list[Reason] = []
    words: tuple[str, ...] = ()
    try:
        seen = view.of(message, meta)
        reasons = heuristics.check(message, now, seen)
        words = tokens.of_view(seen)
    except Exception:  # a bug must never cost a message: it is filed unscored by content
        log.exception("message not scored by content: the junk checks failed")
    return Content(meta, tuple(reasons), words)


async def examine(message: bytes, now: datetime) -> Content:
    """``read``, in a worker thread when the message is larger than ``tokens.LARGE``."""
    if len(message) > tokens.LARGE:
        return await asyncio.to_thread(read, message, now)
    return read(message, now)


class JunkFilter:
    def __init__(self, store: JunkStore, cfg: JunkConfig) -> None:
        self._store = store
        self._cfg = cfg
        self._rspamd = RspamdClient(cfg.rspamd_url) if cfg.rspamd_url else None

    @property
    def reads_content(self) -> bool:
        """Whether ``score`` reads the message itself (False: Rspamd does)."""
        return self._rspamd is None

    async def score(
        self,
        user_ids: Sequence[int],
        message: bytes,
        verdict: Verdict | None,
        arrival: Arrival,
        now: datetime,
        *,
        forced: str = "",
        content: Content | None = None,
    ) -> dict[int, scoring.Score]:
        """Each recipient's score of ``message`` (its forged X-Spam fields already removed);
        ``content`` is what ``examine`` read of it, when the caller has it."""
        if self._rspamd is not None:
            return await self._rspamd_scores(user_ids, message, arrival, forced)
        if content is None:
            content = await examine(message, now)
        shared = scoring.auth_reasons(verdict) + list(content.reasons)
        words = content.words
        out: dict[int, scoring.Score] = {}
        for user_id in dict.fromkeys(user_ids):
            model = await self._store.junk_model(user_id, words)
            reasons = list(shared)
            found = scoring.bayes_reason(bayes.classify(model, words))
            if found is not None:
                reasons.insert(0, found)
            threshold = self._cfg.threshold if model.threshold is None else model.threshold
            out[user_id] = scoring.total(reasons, threshold, forced)
        return out

    async def _rspamd_scores(
        self, user_ids: Sequence[int], message: bytes, arrival: Arrival, forced: str
    ) -> dict[int, scoring.Score]:
        assert self._rspamd is not None
        request = RspamdRequest(
            ip=arrival.ip,
            helo=arrival.helo,
            sender=arrival.sender,
            recipients=arrival.recipients,
            hostname=arrival.hostname,
        )
        try:
            result = await self._rspamd.check(request, message)
        except RspamdError as e:
            log.warning("message not scored: %s", e, extra=kv(ip=arrival.ip))
            reasons = (heuristics.Reason("RSPAMD_UNAVAILABLE", 0.0, f"not scored: {e}"),)
            unscored = scoring.Score(0.0, self._cfg.threshold, reasons, forced)
            return dict.fromkeys(user_ids, unscored)
        verdict = scoring.total(result.reasons, result.required, forced)
        if result.junk and not verdict.junk:  # Rspamd's action says junk below its score
            verdict = scoring.Score(
                verdict.points, verdict.threshold, verdict.reasons, result.action
            )
        return dict.fromkeys(user_ids, verdict)
