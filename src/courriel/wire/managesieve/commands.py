"""ManageSieve commands (RFC 5804 §2) as the core hands them to the session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NeedData:
    """No whole command is buffered yet."""


@dataclass(frozen=True, slots=True)
class Paused:
    """The connection is over (after LOGOUT or a fatal error): read nothing more."""


@dataclass(frozen=True, slots=True)
class Capability:
    pass


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str  # upper-case
    initial: bytes | None  # decoded initial response (RFC 4959-style SASL-IR), None if absent


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """One client response inside AUTHENTICATE: base64 already decoded."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthCancel:
    """The client answered a challenge with "*" (RFC 5804 §2.1)."""


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class Logout:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    tag: str | None


@dataclass(frozen=True, slots=True)
class Unauthenticate:
    pass


@dataclass(frozen=True, slots=True)
class HaveSpace:
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class PutScript:
    name: str
    content: bytes


@dataclass(frozen=True, slots=True)
class CheckScript:
    content: bytes


@dataclass(frozen=True, slots=True)
class ListScripts:
    pass


@dataclass(frozen=True, slots=True)
class SetActive:
    name: str  # "" deactivates (RFC 5804 §2.8)


@dataclass(frozen=True, slots=True)
class GetScript:
    name: str


@dataclass(frozen=True, slots=True)
class DeleteScript:
    name: str


@dataclass(frozen=True, slots=True)
class RenameScript:
    old: str
    new: str


Command = (
    Capability
    | Authenticate
    | AuthResponse
    | AuthCancel
    | StartTls
    | Logout
    | Noop
    | Unauthenticate
    | HaveSpace
    | PutScript
    | CheckScript
    | ListScripts
    | SetActive
    | GetScript
    | DeleteScript
    | RenameScript
)
Event = Command | NeedData | Paused
