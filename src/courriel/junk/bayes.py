"""A Bayesian junk classifier: Robinson's token probabilities, Fisher's chi-squared combining.

Theory of operation
-------------------
For each token of a message the user's model gives (ham count, spam count) over the messages
trained as ham and as spam. Following Gary Robinson ("A Statistical Approach to the Spam
Problem", 2003), a token's spam probability is the ratio of its spam and ham frequencies,

    p(w) = (s/S) / (s/S + h/H)

pulled towards an assumed 0.5 by how little evidence there is (strength ``STRENGTH``):

    f(w) = (STRENGTH * 0.5 + n * p(w)) / (STRENGTH + n),  n = s + h

Only tokens whose f(w) is at least ``MIN_DISTANCE`` away from 0.5 count, the
``MAX_CLUES`` strongest of them. They are combined with Fisher's method as SpamBayes does: the
hypothesis "these probabilities are random" is tested with the chi-squared distribution both
ways,

    S = 1 - C⁻¹(-2 Σ ln(1 - f), 2k)     (near 1 when the tokens say spam)
    H = 1 - C⁻¹(-2 Σ ln f, 2k)          (near 1 when they say ham)
    score = (1 + S - H) / 2

so a message with strong evidence either way lands near 0 or 1, and one with evidence both
ways (or none) near 0.5, which is "unsure" rather than a coin toss. Below ``MIN_TRAINED``
messages of either class the model has no opinion at all.

Why this and not naive Bayes with a product of probabilities (Graham 2002): the product is
overconfident with many correlated tokens, while the chi-squared combination keeps an honest
middle ground; SpamBayes measured it as the better ranker, and it needs no tuning beyond the
two constants here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from courriel.store.base import JunkModel

STRENGTH = 0.45  # Robinson's s: how much an unseen token's 0.5 weighs
MIN_DISTANCE = 0.1  # tokens nearer 0.5 than this are ignored
MAX_CLUES = 150
MIN_TRAINED = 5  # messages of each class before the model says anything


@dataclass(frozen=True, slots=True)
class BayesResult:
    probability: float | None  # 0 (ham) .. 1 (spam); None: not trained enough
    clues: tuple[tuple[str, float], ...] = ()  # the strongest tokens and their f(w)


def chi2q(x2: float, freedom: int) -> float:
    """P(chi² >= x2) for an even number of degrees of freedom."""
    m = x2 / 2.0
    term = math.exp(-m)
    total = term
    for i in range(1, freedom // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


def token_probability(ham: int, spam: int, ham_messages: int, spam_messages: int) -> float:
    h = ham / max(ham_messages, 1)
    s = spam / max(spam_messages, 1)
    p = 0.5 if h + s == 0 else s / (h + s)
    n = ham + spam
    return (STRENGTH * 0.5 + n * p) / (STRENGTH + n)


def classify(model: JunkModel, tokens: tuple[str, ...]) -> BayesResult:
    if model.ham_messages < MIN_TRAINED or model.spam_messages < MIN_TRAINED:
        return BayesResult(None)
    scored = []
    for token in tokens:
        counts = model.tokens.get(token)
        if counts is None:
            continue
        f = token_probability(counts[0], counts[1], model.ham_messages, model.spam_messages)
        if abs(f - 0.5) >= MIN_DISTANCE:
            scored.append((abs(f - 0.5), token, f))
    scored.sort(reverse=True)
    clues = [(token, f) for _, token, f in scored[:MAX_CLUES]]
    if not clues:
        return BayesResult(0.5)
    k = len(clues)
    # f stays inside (0, 1): STRENGTH keeps it off both ends.
    spam = 1.0 - chi2q(-2.0 * sum(math.log(1.0 - f) for _, f in clues), 2 * k)
    ham = 1.0 - chi2q(-2.0 * sum(math.log(f) for _, f in clues), 2 * k)
    return BayesResult((1.0 + spam - ham) / 2.0, tuple(clues[:5]))
