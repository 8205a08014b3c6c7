"""MTA-STS (RFC 8461): the TXT record, the policy file, and which MX hosts a policy allows.

Theory of operation
-------------------
Pure functions, no I/O; ``courriel.net.mtasts`` fetches and caches.

* ``parse_txt`` reads ``_mta-sts.<domain>`` TXT strings: exactly one must start with
  ``v=STSv1`` (RFC 8461 §3.1: several are treated as none) and carry an ``id`` of 1 to 32
  letters and digits; other fields are ignored.
* ``parse_policy`` reads the policy file: ``key: value`` lines ended by LF or CRLF
  (RFC 8461 §3.2), unknown keys ignored, ``version: STSv1``, ``mode`` one of enforce, testing
  or none, ``max_age`` at most 31557600 seconds (one year), and at least one ``mx`` unless the
  mode is none. A bad file raises ``PolicyError`` with the reason; the sender then behaves as
  if there were no policy (RFC 8461 §5), unless it still holds an unexpired one.
* ``Policy.allows(host)`` matches an MX host against the ``mx`` patterns: exact names, or
  ``*.`` followed by a domain matching exactly one more label on the left (RFC 8461 §4.1).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MAX_AGE_LIMIT = 31_557_600  # RFC 8461 §3.2
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3: senders may limit the size they fetch
_ID = re.compile(r"[A-Za-z0-9]{1,32}")


class PolicyError(ValueError):
    """A TXT record or policy file that cannot be used; the message says why."""


class Mode(enum.Enum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Policy:
    mode: Mode
    max_age: int
    mx: tuple[str, ...]  # patterns, lower case, without a final dot

    def allows(self, host: str) -> bool:
        """Whether ``host`` matches one of the ``mx`` patterns (RFC 8461 §4.1)."""
        host = host.lower().rstrip(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                head, _, rest = host.partition(".")
                if head and rest == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


def parse_txt(strings: list[str]) -> str | None:
    """The policy id from the ``_mta-sts`` TXT strings, or ``None`` when there is no policy."""
    records = [s for s in strings if s.strip().startswith("v=STSv1")]
    if len(records) != 1:
        return None  # RFC 8461 §3.1: zero or several records mean no policy
    fields: dict[str, str] = {}
    for part in records[0].split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    if fields.get("v") != "STSv1":
        return None
    policy_id = fields.get("id", "")
    return policy_id if _ID.fullmatch(policy_id) else None


def parse_policy(text: str) -> Policy:
    """The policy in ``text``; raises ``PolicyError`` naming what is wrong."""
    values: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PolicyError(f"policy line without a colon: {line[:60]!r}")
        values.setdefault(key.strip().lower(), []).append(value.strip())
    if values.get("version", [""])[0] != "STSv1":
        raise PolicyError("the policy does not say version: STSv1")
    try:
        mode = Mode(values.get("mode", [""])[0])
    except ValueError:
        raise PolicyError("the policy mode is not enforce, testing or none") from None
    age = values.get("max_age", [""])[0]
    if not age.isdigit() or len(age) > 10:
        raise PolicyError("the policy has no valid max_age")
    mx = tuple(m.lower().rstrip(".") for m in values.get("mx", []) if m)
    if not mx and mode is not Mode.NONE:
        raise PolicyError("the policy lists no mx host")
    return Policy(mode, min(int(age), MAX_AGE_LIMIT), mx)
