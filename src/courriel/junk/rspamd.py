"""A client of Rspamd's HTTP protocol, for sites that already run it (``[junk] rspamd_url``).

Theory of operation
-------------------
Rspamd's normal worker (port 11333 by default) scores a message posted to ``/checkv2`` with the
envelope in request headers: ``IP`` (the client's address), ``Helo``, ``From`` (MAIL FROM),
one ``Rcpt`` per recipient, ``Hostname`` (the client's name; we send the HELO when we know no
better), ``MTA-Name`` (ours) and ``Queue-Id``. It answers with JSON: ``score``,
``required_score``, ``action`` (``no action``, ``greylist``, ``add header``,
``rewrite subject``, ``soft reject``, ``reject``) and ``symbols`` (name -> score, options).

Every action but "no action" and "greylist" means junk here: the message goes to Junk, never
refused, as courriel's own scoring does (a site that wants Rspamd's rejections runs it as a
milter in front of an MTA that honours them). A request is bounded by ``TIMEOUT`` seconds and
a reply by ``MAX_REPLY`` bytes; a failure raises ``RspamdError`` and the caller stores the
message unscored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict

from courriel.junk.heuristics import Reason

TIMEOUT = 10.0
MAX_REPLY = 1024 * 1024
MAX_SYMBOLS = 20  # symbols kept as reasons, the heaviest first
_NOT_JUNK = frozenset({"no action", "greylist"})


class RspamdError(Exception):
    """Rspamd could not be asked or gave no usable answer."""


@dataclass(frozen=True, slots=True)
class RspamdRequest:
    ip: str
    helo: str
    sender: str
    recipients: tuple[str, ...]
    hostname: str  # ours (MTA-Name)
    queue_id: str = ""


@dataclass(frozen=True, slots=True)
class RspamdResult:
    score: float
    required: float
    action: str
    reasons: tuple[Reason, ...]

    @property
    def junk(self) -> bool:
        return self.action not in _NOT_JUNK


def headers(request: RspamdRequest) -> list[tuple[str, str]]:
    """The request headers Rspamd reads the envelope from (one ``Rcpt`` per recipient)."""
    out = [
        ("IP", request.ip),
        ("Helo", request.helo),
        ("Hostname", request.helo or "unknown"),
        ("From", request.sender),
        ("MTA-Name", request.hostname),
    ]
    out += [("Rcpt", r) for r in request.recipients]
    if request.queue_id:
        out.append(("Queue-Id", request.queue_id))
    return out


def parse_reply(body: bytes) -> RspamdResult:
    try:
        data = json.loads(body)
        points = float(data["score"])
        required = float(data["required_score"])
        action = str(data["action"])
        symbols = data.get("symbols") or {}
    except (ValueError, KeyError, TypeError) as e:
        raise RspamdError(f"Rspamd's answer cannot be read: {e}") from None
    reasons = []
    if isinstance(symbols, dict):
        for name, symbol in symbols.items():
            if not isinstance(symbol, dict):
                continue
            weight = float(symbol.get("score", 0.0))
            options = symbol.get("options") or []
            said = ", ".join(str(o)[:80] for o in options[:5]) if isinstance(options, list) else ""
            text = f"Rspamd symbol {str(name)[:60]}" + (f" ({said})" if said else "")
            if weight:
                reasons.append(Reason(str(name)[:60], weight, text))
    reasons.sort(key=lambda r: -abs(r.points))
    return RspamdResult(points, required, action, tuple(reasons[:MAX_SYMBOLS]))


class RspamdClient:
    """One HTTP request per message: a session per request, so nothing is left to close when
    the server stops (Rspamd runs beside us; a new loopback connection costs little)."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/") + "/checkv2"

    async def check(self, request: RspamdRequest, message: bytes) -> RspamdResult:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    self._url, data=message, headers=CIMultiDict(headers(request))
                ) as reply,
            ):
                if reply.status != 200:
                    raise RspamdError(f"Rspamd answered HTTP {reply.status}")
                body = await reply.content.read(MAX_REPLY + 1)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise RspamdError(f"Rspamd at {self._url} cannot be reached: {e}") from None
        if len(body) > MAX_REPLY:
            raise RspamdError("Rspamd's answer is too long")
        return parse_reply(body)
