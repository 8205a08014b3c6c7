"""DKIM (RFC 6376, RFC 8463): signing with our keys, verifying every signature of a message.

Theory of operation
-------------------
Signing (``sign``) makes one DKIM-Signature per key -- by default an Ed25519 one (RFC 8463) and
an RSA-2048 one, so receivers that know Ed25519 use it and the others still find RSA -- with
relaxed/relaxed canonicalization. The header list is the fields present among ``SIGNED``, each
as often as it occurs, plus one more time for each field of ``OVERSIGNED``: an extra name in
``h=`` matches an absent field (RFC 6376 §5.4.2), so nobody can add a second From, Subject or
To after signing without breaking the signature. dkimpy parses and canonicalizes;
``cryptography`` signs (about 1 ms for RSA-2048, where dkimpy's pure-Python RSA holds the
interpreter for 60 ms). Keys are kept as PEM (PKCS #8).

Verification (``DkimVerifier.verify``) checks at most ``max_signatures`` signatures (RFC 6376
§6.1 lets a verifier limit them; 100 signatures must not cost 100 key lookups and hashes):

1. in a thread, dkimpy parses the header and each signature's tags (a malformed one is a
   ``permerror`` with dkimpy's words);
2. on the event loop, the keys of the remaining signatures are looked up at once through the
   ``Resolver``; no answer is ``temperror``, no record or a revoked or unusable one ``permerror``;
3. in a thread again, the body hash and the signature are checked: a changed body is
   ``fail`` "body hash mismatch", a bad signature ``fail`` "signature does not verify".

Both thread steps hold a semaphore, so a flood of signed mail uses at most ``max_threads``
threads of CPU, and every result carries its reason in plain words for the 550 sentence and
the Authentication-Results comment.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import functools
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dkim as dkimpy
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils
from dkim.canonicalization import CanonicalizationPolicy

from courriel.mail.auth.bodyhash import body_hash
from courriel.mail.auth.dns import DnsTempError, Resolver

# Header fields signed when present (RFC 6376 §5.4.1 recommends these).
SIGNED: tuple[bytes, ...] = (
    b"from", b"reply-to", b"subject", b"date", b"to", b"cc", b"message-id",
    b"in-reply-to", b"references", b"sender", b"mime-version", b"content-type",
    b"content-transfer-encoding", b"content-id", b"content-description", b"content-language",
    b"list-id", b"list-unsubscribe", b"list-unsubscribe-post", b"list-post", b"list-help",
    b"list-subscribe", b"list-owner", b"list-archive", b"resent-date", b"resent-from",
    b"resent-to", b"resent-cc", b"resent-message-id",
)  # fmt: skip
# Signed once more than they occur, so that one cannot be added (RFC 6376 §8.15).
OVERSIGNED: frozenset[bytes] = frozenset(
    {
        b"from", b"subject", b"date", b"to", b"cc", b"message-id", b"reply-to",
        b"mime-version", b"content-type", b"content-transfer-encoding",
    }
)  # fmt: skip
CANONICALIZATION = (b"relaxed", b"relaxed")
MAX_SIGNATURES = 10
MIN_RSA_BITS = 1024  # RFC 8301 §3.2: verifiers must not consider shorter RSA keys valid


class Algorithm(enum.Enum):
    ED25519 = "ed25519"
    RSA = "rsa"

    @property
    def tag(self) -> bytes:
        return b"ed25519-sha256" if self is Algorithm.ED25519 else b"rsa-sha256"


class Outcome(enum.Enum):
    """RFC 8601 §2.7.1 result values for DKIM."""

    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: Algorithm
    private_pem: bytes  # PKCS #8 PEM


@dataclass(frozen=True, slots=True)
class SignatureResult:
    domain: str  # d=, lower-case ("" when the signature could not be read)
    selector: str  # s=
    algorithm: str  # a=, as written
    outcome: Outcome
    reason: str  # plain words; "" for pass
    b_prefix: str = ""  # first 8 characters of b= (header.b, RFC 6008)


# --- keys -----------------------------------------------------------------------------------------


def generate_key(algorithm: Algorithm) -> bytes:
    """A new private key as PKCS #8 PEM: Ed25519, or RSA-2048 (RFC 8301 §3.2)."""
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if algorithm is Algorithm.ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_record(algorithm: Algorithm, private_pem: bytes) -> str:
    """The TXT record to publish at ``selector._domainkey.domain`` (RFC 6376 §3.6.1)."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if algorithm is Algorithm.ED25519:
        raw = key.public_key().public_bytes(  # RFC 8463 §4.2: the raw 32-octet key
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        raw = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return f"v=DKIM1; k={algorithm.value}; p={base64.b64encode(raw).decode('ascii')}"


@functools.lru_cache(maxsize=256)
def private_key(pem: bytes) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"not an Ed25519 or RSA key: {type(key).__name__}")
    return key


def split_header(message: bytes) -> tuple[bytes, int]:
    """The header with its blank line (a message with an empty body), and where the body starts."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message.rstrip(b"\r\n") + b"\r\n\r\n", len(message)
    return message[: end + 4], end + 4


# --- signing --------------------------------------------------------------------------------------


def header_list(message: bytes) -> list[bytes]:
    """The ``h=`` names for ``message``: present fields of SIGNED, plus one of each OVERSIGNED."""
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[:end]
    present: dict[bytes, int] = {}
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        name = line.split(b":", 1)[0].strip().lower()
        present[name] = present.get(name, 0) + 1
    out: list[bytes] = []
    for name in SIGNED:
        out += [name] * (present.get(name, 0) + (1 if name in OVERSIGNED else 0))
    return out


def sign(message: bytes, keys: Sequence[SigningKey], now: float | None = None) -> bytes:
    """DKIM-Signature fields for ``message`` (CRLF lines), one per key, to put on top of it.

    CPU work (hashing the body): call it in a thread for large messages.
    """
    head, body_start = split_header(message)
    headers, _ = dkimpy.rfc822_parse(head)
    policy = CanonicalizationPolicy.from_c_value(b"/".join(CANONICALIZATION))
    bh = base64.b64encode(body_hash(message, relaxed=True, start=body_start))
    canonical = policy.canonicalize_headers(headers)
    include = header_list(message)
    when = str(int(time.time() if now is None else now)).encode("ascii")
    out = b""
    for key in keys:
        tags = [
            (b"v", b"1"),
            (b"a", key.algorithm.tag),
            (b"c", b"/".join(CANONICALIZATION)),
            (b"d", key.domain.encode("ascii")),
            (b"s", key.selector.encode("ascii")),
            (b"t", when),
            (b"h", b":".join(include)),
            (b"bh", bh),
            (b"b", b""),
        ]
        value = fold_tags([k + b"=" + v + b";" for k, v in tags[:-1]]) + b"\r\n b="
        digest = hashlib.sha256()
        # RFC 6376 §3.7: the selected fields, then this field with an empty b=, unterminated.
        dkimpy.hash_headers(digest, policy, canonical, include, (b"DKIM-Signature", value), {})
        signature = sign_digest(private_key(key.private_pem), digest.digest())
        b64 = base64.b64encode(signature)
        out += b"DKIM-Signature:" + value + fold_b64(b64) + b"\r\n"
    return out


def sign_digest(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey, digest: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(digest)  # RFC 8463 §3: Ed25519 over the SHA-256 hash
    return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


def fold_tags(words: list[bytes], start: int = len(b"DKIM-Signature:"), width: int = 76) -> bytes:
    """`` word word`` with CRLF SP wherever a line would pass ``width`` (RFC 5322 §2.2.3)."""
    out, line = b"", start
    for word in words:
        pieces = [word]
        if len(word) > width - 1 and b":" in word:  # a long h= list folds after its colons
            parts = word.split(b":")
            pieces = [p + b":" for p in parts[:-1]] + [parts[-1]]
        for i, piece in enumerate(pieces):
            sep = b" " if i == 0 else b""
            if line + len(sep) + len(piece) > width:
                out += b"\r\n "
                line, sep = 1, b""
            out += sep + piece
            line += len(sep) + len(piece)
    return out


def fold_b64(b64: bytes, width: int = 70) -> bytes:
    return b"\r\n ".join(b64[i : i + width] for i in range(0, len(b64), width)) if b64 else b""


# --- verification ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    index: int
    sig: dict[bytes, bytes]
    include: list[bytes]
    field: tuple[bytes, bytes]
    record: bytes | None = None
    temp: str = ""  # why the key lookup had no answer


class DkimVerifier:
    """Verifies the first ``max_signatures`` signatures; at most ``max_threads`` at once."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        max_signatures: int = MAX_SIGNATURES,
        max_threads: int = 2,
    ) -> None:
        self._resolver = resolver
        self._max = max_signatures
        self._cpu = asyncio.Semaphore(max_threads)

    async def verify(self, message: bytes) -> list[SignatureResult]:
        async with self._cpu:
            parsed = await asyncio.to_thread(_parse, message, self._max)
        if isinstance(parsed, list):
            return parsed
        verifier, done, pending = parsed
        await asyncio.gather(*(self._lookup(p) for p in pending))
        async with self._cpu:
            checked = await asyncio.to_thread(_check_all, verifier, pending, message)
        done.update(checked)
        return [done[i] for i in sorted(done)]

    async def _lookup(self, p: _Pending) -> None:
        name = f"{_text(p.sig[b's'])}._domainkey.{_text(p.sig[b'd'])}"
        try:
            records = await self._resolver.txt(name)
        except DnsTempError as e:
            p.temp = str(e)
            return
        # RFC 6376 §3.6.2.2: several records make the result undefined; use the first one.
        p.record = records[0] if records else b""


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace").strip().lower()


def _result(p: _Pending, outcome: Outcome, reason: str) -> SignatureResult:
    b = re.sub(rb"\s+", b"", p.sig.get(b"b", b""))[:8]
    return SignatureResult(
        _text(p.sig.get(b"d", b"")),
        _text(p.sig.get(b"s", b"")),
        _text(p.sig.get(b"a", b"")),
        outcome,
        reason,
        b.decode("ascii", "replace"),
    )


_Parsed = tuple[Any, dict[int, SignatureResult], list[_Pending]]


def _parse(message: bytes, limit: int) -> list[SignatureResult] | _Parsed:
    head = split_header(message)[0]
    try:
        # The header only: the body is hashed here, once per canonicalization, in pieces.
        verifier = dkimpy.DKIM(head, minkey=MIN_RSA_BITS)
    except Exception as e:  # a header dkimpy cannot read: no signature in it can be checked
        if b"dkim-signature" not in head.lower():
            return []
        return [SignatureResult("", "", "", Outcome.PERMERROR, f"header cannot be parsed: {e}")]
    fields = [(n, v) for n, v in verifier.headers if n.lower() == b"dkim-signature"]
    done: dict[int, SignatureResult] = {}
    pending: list[_Pending] = []
    for index in range(min(len(fields), limit)):
        p = _Pending(index, {}, [], fields[index])
        try:
            sig, include, _all = verifier.verify_headerprep(index)
        except dkimpy.DKIMException as e:
            done[index] = _result(p, Outcome.PERMERROR, _reason(e))
            continue
        except Exception as e:  # the library tripped on a hostile field: that signature fails
            done[index] = _result(p, Outcome.PERMERROR, f"unreadable signature: {type(e).__name__}")
            continue
        p.sig, p.include = dict(sig), include
        if p.sig.get(b"a", b"").strip().lower() == b"rsa-sha1":  # RFC 8301 §3.1
            done[index] = _result(p, Outcome.PERMERROR, "rsa-sha1 is no longer accepted")
            continue
        if b"from" not in include:  # RFC 6376 §5.4: From must be signed
            done[index] = _result(p, Outcome.PERMERROR, "From is not signed")
            continue
        pending.append(p)
    return verifier, done, pending


_BodyKey = tuple[bool, str, int | None]


def _check_all(
    verifier: Any, pending: list[_Pending], message: bytes
) -> dict[int, SignatureResult]:
    start = split_header(message)[1]
    hashes: dict[_BodyKey, bytes] = {}  # one hash per canonicalization, algorithm and l=

    def hashed(key: _BodyKey) -> bytes:
        if key not in hashes:
            hashes[key] = body_hash(message, key[0], key[1], key[2], start)
        return hashes[key]

    return {p.index: _check(verifier, p, hashed) for p in pending}


def _body_key(sig: dict[bytes, bytes]) -> _BodyKey | str:
    """(relaxed?, hash, l=) of a signature's body hash, or why it cannot be computed."""
    body_c = sig.get(b"c", b"simple").partition(b"/")[2].strip().lower() or b"simple"
    if body_c not in (b"simple", b"relaxed"):  # RFC 6376 §3.5 c=
        return f"unknown body canonicalization {body_c.decode('ascii', 'replace')!r}"
    length = sig.get(b"l")
    if length is not None and not length.strip().isdigit():
        return "l= is not a number"
    algorithm = sig.get(b"a", b"").strip().lower().rpartition(b"-")[2].decode("ascii", "replace")
    if algorithm != "sha256":
        return f"unknown hash {algorithm!r}"
    return body_c == b"relaxed", algorithm, None if length is None else int(length)


def _check(verifier: Any, p: _Pending, hashed: Callable[[_BodyKey], bytes]) -> SignatureResult:
    if p.temp:
        return _result(p, Outcome.TEMPERROR, f"key lookup failed: {p.temp}")
    where = f"{_text(p.sig[b's'])}._domainkey.{_text(p.sig[b'd'])}"
    if not p.record:
        return _result(p, Outcome.PERMERROR, f"no key published at {where}")
    if re.search(rb"(^|;)\s*p\s*=\s*(;|$)", p.record):  # RFC 6376 §3.6.1: empty p= is revoked
        return _result(p, Outcome.PERMERROR, f"the key at {where} is revoked")
    key = _body_key(p.sig)
    if isinstance(key, str):
        return _result(p, Outcome.PERMERROR, key)
    try:
        expected = base64.b64decode(re.sub(rb"\s+", b"", p.sig.get(b"bh", b"")), validate=True)
    except ValueError:
        return _result(p, Outcome.PERMERROR, "bh= is not base64")
    if hashed(key) != expected:  # RFC 6376 §6.1.3
        return _result(p, Outcome.FAIL, "body hash mismatch")
    # The body is checked; dkimpy checks the header hash and the signature (without bh=, it
    # leaves the body alone).
    header_only = {k: v for k, v in p.sig.items() if k != b"bh"}
    try:
        pk, bits, ktag, tlsrpt = dkimpy.evaluate_pk(where.encode(), p.record)
        verifier.pk, verifier.keysize, verifier.ktag, verifier.seqtlsrpt = pk, bits, ktag, tlsrpt
        ok = verifier.verify_sig_process(header_only, list(p.include), p.field, None)
    except dkimpy.KeyFormatError as e:
        return _result(p, Outcome.PERMERROR, _reason(e))
    except dkimpy.DKIMException as e:
        return _result(p, Outcome.PERMERROR, _reason(e))
    except Exception as e:  # malformed base64 and the like, deep inside the library
        return _result(p, Outcome.PERMERROR, f"unreadable signature or key: {type(e).__name__}")
    if not ok:
        return _result(p, Outcome.FAIL, "signature does not verify")
    return _result(p, Outcome.PASS, "")


def _reason(e: Exception) -> str:
    text = str(e)
    if text.startswith("public key too small"):
        return f"key too small ({text.rsplit(':', 1)[-1].strip()} bits)"
    return " ".join(text.split())[:200] or type(e).__name__
