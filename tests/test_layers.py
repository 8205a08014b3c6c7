"""The layers import only downwards (docs/architecture.md): checked on the source, not by review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "courriel"

# package -> courriel packages and modules it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # sans-IO cores: bytes and typed events only
    "wire": ("net", "session", "store", "queue", "accounts", "app", "admin", "cli", "config"),
    # pure message logic: DNS through an interface, no storage or sockets of its own
    "mail": ("net", "session", "store", "queue", "app", "admin", "cli"),
    # policy talks to the store through its interfaces only (store.base)
    "session": ("net", "app", "cli", "admin"),
    # connections: protocols get narrow services records from app.py, never the App itself
    "net": ("app", "cli", "admin", "web"),
    "store": ("net", "session", "queue", "wire", "app", "cli", "admin"),
    # the Sieve language: pure, like mail/; delivery (queue/) carries out what it decides
    "sieve": ("net", "session", "store", "queue", "accounts", "app", "admin", "cli", "config"),
    # junk filtering: message logic over the store's interface, no protocol code
    "junk": ("net", "session", "queue", "wire", "app", "cli", "admin"),
}
# standard modules that do I/O, which no sans-IO core may touch
WIRE_NO_IO = ("asyncio", "socket", "ssl", "sqlite3", "asyncpg", "selectors")
# what session/ may use of store/: the interface and its record types
SESSION_STORE_ALLOWED = ("courriel.store.base",)


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def files(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def hits(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f"courriel.{f}" or name.startswith(f"courriel.{f}.") for f in forbidden)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(package: str) -> None:
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in files(package)
        for name in imports_of(path)
        if hits(name, FORBIDDEN[package])
    ]
    assert files(package) and not bad, bad


def test_wire_does_no_io() -> None:
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for package in ("wire", "sieve")
        for path in files(package)
        for name in imports_of(path)
        if name.split(".")[0] in WIRE_NO_IO
    ]
    assert not bad, bad


def test_session_uses_the_store_interface_only() -> None:
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in files("session")
        for name in imports_of(path)
        if name.startswith("courriel.store")
        and not any(name == a or name.startswith(a + ".") for a in SESSION_STORE_ALLOWED)
    ]
    assert not bad, bad


def test_the_checker_sees_imports() -> None:
    # A rule that never fires would pass on anything: make sure the parser finds real imports.
    names = imports_of(SRC / "session" / "smtp.py")
    assert any(n.startswith("courriel.wire") for n in names)
    assert hits("courriel.store.base", ("store",)) and not hits("courriel.storex", ("store",))
