"""The store's interface for junk filtering: each user's Bayesian counts and the greylist.

Theory of operation
-------------------
Training and scoring see the same counts from every worker and node because they live in the
store; a message is named by a digest of its bytes, so training it again (or a copy of it in
another mailbox) does not count it twice. The SQL backends implement ``JunkStore`` in
``courriel.store.sql.junk``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class JunkSample:
    """One message to train: a digest naming it (the same bytes give the same digest, in any
    mailbox) and its tokens (``courriel.junk.tokens``)."""

    digest: str
    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JunkModel:
    """What a user's Bayesian model knows of some tokens."""

    ham_messages: int  # messages trained as ham
    spam_messages: int
    tokens: dict[str, tuple[int, int]]  # token -> (ham count, spam count), known tokens only
    threshold: float | None  # the user's own junk score threshold; None: the server's


class JunkStore(Protocol):
    async def junk_model(self, user_id: int, tokens: Sequence[str]) -> JunkModel:
        """The user's counts for those tokens (unknown tokens are left out)."""

    async def junk_train(self, user_id: int, samples: Sequence[JunkSample], spam: bool) -> int:
        """Counts each sample as spam (or ham) in one transaction; a sample trained as the
        other class before is unlearned first, one trained as this class is skipped. Returns
        how many samples changed class."""

    async def junk_trained_as(self, user_id: int, digest: str) -> bool | None:
        """True: trained as spam, False: as ham, None: never trained."""

    async def set_junk_threshold(self, user_id: int, threshold: float | None) -> None: ...

    async def greylist_check(
        self, triple: str, now: float, *, delay: float, retry_window: float, pass_seconds: float
    ) -> float:
        """Seconds ``triple`` must still wait before it is accepted (0: accept now). A triple
        first seen starts waiting ``delay``; a retry after that and within ``retry_window``
        of the first try passes, and the triple then passes for ``pass_seconds``."""
