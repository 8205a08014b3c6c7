"""The MTA-STS policy for each hosted domain (RFC 8461 §3.3).

Theory of operation
-------------------
Senders fetch ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt``; the Host header names the
domain. The text is ``dnsrecords.mta_sts_policy``, the one ``courriel dns`` prints and digests
into the ``_mta-sts`` TXT id, so the served policy and the announced id always agree.
"""

from __future__ import annotations

from courriel.config import Config
from courriel.dnsrecords import mta_sts_policy

PATH = "/.well-known/mta-sts.txt"
PREFIX = "mta-sts."


def policy_domain(host: str) -> str | None:
    """The domain a policy request is for, from the Host name; None when it is not mta-sts.*."""
    return host[len(PREFIX) :] if host.startswith(PREFIX) and len(host) > len(PREFIX) else None


def policy(cfg: Config, self_signed: bool) -> str:
    return mta_sts_policy(cfg.hostname, self_signed, cfg.mtasts)
