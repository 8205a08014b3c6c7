"""Which address and port a listener gets: the auto rules, tried by really binding."""

from __future__ import annotations

import logging
import socket

import pytest

from courriel.config import ListenerConfig
from courriel.net.ports import BindError, bind_listener, candidates
from courriel.testing import net as testing_net
from courriel.testing.net import free_port


def _lc(standard: int, address: str = "", port: int = 0) -> ListenerConfig:
    return ListenerConfig("imap", "imap", standard, False, address=address, port=port)


@pytest.mark.parametrize(
    ("address", "port", "expected"),
    [
        ("", 0, [("", 143), ("127.0.0.1", 10143)]),
        ("192.0.2.7", 0, [("192.0.2.7", 143), ("192.0.2.7", 10143)]),
        ("", 2143, [("", 2143)]),
        ("::1", 2143, [("::1", 2143)]),
    ],
)
def test_candidates(address: str, port: int, expected: list[tuple[str, int]]) -> None:
    assert candidates(_lc(143, address, port)) == expected


def test_no_fallback_beyond_the_last_port() -> None:
    assert candidates(_lc(60000)) == [("", 60000)]


def _occupy_all_addresses() -> tuple[socket.socket, int]:
    """A port (with a free fallback 1000 above) held by "another program" on every address."""
    for _ in range(50):
        port = free_port()
        if port + 1000 > 65535:
            continue
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            busy.bind(("0.0.0.0", port))
            busy.listen(1)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", port + 1000))
        except OSError:
            busy.close()
            continue
        return busy, port
    pytest.fail("no free pair of ports")


def test_standard_port_taken_falls_back_to_loopback_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    busy, port = _occupy_all_addresses()
    try:
        with caplog.at_level(logging.INFO, logger="courriel"):
            bound = bind_listener(_lc(port), offset=1000)
        try:
            assert (bound.address, bound.port) == ("127.0.0.1", port + 1000)
            assert bound.loopback_only
            assert f"port {port} is already in use by another program" in bound.fallback
            assert [s.getsockname()[:2] for s in bound.sockets] == [("127.0.0.1", port + 1000)]
            # It really listens: the connection is accepted.
            socket.create_connection(("127.0.0.1", port + 1000), timeout=5).close()
        finally:
            for s in bound.sockets:
                s.close()
    finally:
        busy.close()
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert f"already in use by another program; imap listens on 127.0.0.1:{port + 1000}" in (
        warning.getMessage()
    )


def test_free_standard_port_is_used_on_all_addresses() -> None:
    port = free_port()
    bound = bind_listener(_lc(port), offset=1000)
    try:
        assert (bound.address, bound.port, bound.fallback) == ("", port, "")
        assert ("0.0.0.0", port) in [s.getsockname()[:2] for s in bound.sockets]
        assert not bound.loopback_only
    finally:
        for s in bound.sockets:
            s.close()


def test_explicit_port_taken_is_an_error_naming_listener_and_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(BindError) as caught:
            bind_listener(_lc(143, "127.0.0.1", port))
    assert str(caught.value).startswith(f"cannot listen for imap on 127.0.0.1:{port}: ")
    assert "in use" in str(caught.value)


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    """Below the range outgoing connections take their local ports from, so none of them can
    take a chosen port before the server under test binds it (courriel.testing.net)."""
    ports = testing_net.free_ports(20)
    assert len(set(ports)) == 20
    low = testing_net._ephemeral_low()
    if low - testing_net.FLOOR >= 1000:
        assert all(testing_net.FLOOR <= p < low for p in ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))
