"""The whole runtime: courriel.app.serve in-process, and the real process with its signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel import config
from courriel.app import Running, StartupError, run, serve
from courriel.config import LISTENERS
from courriel.net.tls import make_self_signed
from courriel.testing.net import free_ports
from courriel.testing.server import wait_ready

HOSTNAME = "mail.test"


def _write_config(
    tmp_path: Path, ports: dict[str, int], *, grace: float = 5, enabled: set[str] | None = None
) -> Path:
    lines = [f'hostname = "{HOSTNAME}"', "[limits]", f"shutdown_grace_seconds = {grace}"]
    for name in LISTENERS:
        on = name in ports and (enabled is None or name in enabled)
        lines += [f"[listeners.{name}]", f"enabled = {'true' if on else 'false'}"]
        if name in ports:
            lines += ['address = "127.0.0.1"', f"port = {ports[name]}"]
    path = tmp_path / "courriel.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _insecure_client() -> ssl.SSLContext:
    # These tests compare the certificate itself, which changes under them; no name check.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _line(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(5):
        return await reader.readline()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()


async def test_serve_binds_greets_prints_settings_and_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["imaps", "imap", "submission", "smtp", "pop3s"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    cfg = config.load(_write_config(tmp_path, ports))
    started: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve(cfg, ready=started.set_result))
    running = await asyncio.wait_for(started, 10)
    try:
        assert running.address("imaps") == ("127.0.0.1", ports["imaps"])
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", ports["imaps"], ssl=_insecure_client()
        )
        assert (await _line(reader)).startswith(b"* OK [CAPABILITY IMAP4rev1")
        await _close(writer)
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["smtp"])
        assert await _line(reader) == b"220 mail.test ESMTP ready\r\n"
        await _close(writer)
        with pytest.raises(KeyError):
            running.address("pop3")  # disabled
    finally:
        running.stop()
        await asyncio.wait_for(server, 10)
    out = capsys.readouterr().out
    assert out.startswith("courriel is ready.")
    for name, port in ports.items():
        row = next(ln for ln in out.splitlines() if f" {port} " in ln)
        assert "mail.test or 127.0.0.1" in row
        assert ("SSL/TLS" if name.endswith("s") else "STARTTLS") in row
    assert (tmp_path / "tls" / "cert.pem").exists()  # self-signed on first run
    with socket.socket() as s:  # nothing listens any more (TIME_WAIT may remain)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", ports["imaps"]))


async def test_a_listener_that_cannot_bind_stops_the_start(tmp_path: Path) -> None:
    free, taken = free_ports(2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", taken))
        busy.listen(1)
        cfg = config.load(_write_config(tmp_path, {"imaps": free, "pop3": taken}))
        with pytest.raises(StartupError) as caught:
            await serve(cfg)
    assert str(caught.value).startswith(f"cannot listen for pop3 on 127.0.0.1:{taken}: ")
    with socket.socket() as s:  # the listener bound before the failure was released
        s.bind(("127.0.0.1", free))
    assert not (tmp_path / "courriel.db").exists()  # the store was never opened


def test_run_reports_a_failed_start_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, ours = logging.getLogger(), logging.getLogger("courriel")
    saved = list(root.handlers), root.level, ours.level
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        try:
            status = run(config.load(_write_config(tmp_path, {"smtp": taken})))
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])
            ours.setLevel(saved[2])
    assert status == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if " ERROR " in ln]
    assert len(errors) == 1
    assert f"cannot start: cannot listen for smtp on 127.0.0.1:{taken}: " in errors[0]


def test_run_refuses_to_fork_workers_beside_other_threads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, ours = logging.getLogger(), logging.getLogger("courriel")
    saved = list(root.handlers), root.level, ours.level
    release = threading.Event()
    helper = threading.Thread(target=release.wait, name="left-behind")
    helper.start()
    try:
        status = run(config.load(_write_config(tmp_path, {"smtp": free_ports(1)[0]})))
    finally:
        release.set()
        helper.join()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        ours.setLevel(saved[2])
    assert status == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if " ERROR " in ln]
    assert len(errors) == 1
    assert "cannot start: threads still running before the workers start: " in errors[0]
    assert "left-behind" in errors[0]


async def test_bad_password_hashing_costs_stop_the_start(tmp_path: Path) -> None:
    path = _write_config(tmp_path, {"imaps": free_ports(1)[0]})
    path.write_text(path.read_text() + "[auth]\nargon2_parallelism = 0\n")
    with pytest.raises(StartupError, match=r"^\[auth\]: argon2 needs"):
        await serve(config.load(path))


# A process running courriel with one test protocol: IMAP answers "* OK", then echoes lines,
# so a connection can stay open across a certificate reload and a shutdown.
SERVER = textwrap.dedent(
    """
    import sys
    from courriel import app
    from courriel.config import load
    from courriel.net.listener import ProtocolHandlers
    from courriel.testing.placeholder import imap

    def echo(application):
        async def serve(stream, ctx):
            await stream.send(b"* OK ready\\r\\n")
            while data := await stream.read(timeout=30):
                await stream.send(b"ECHO " + data)
        return ProtocolHandlers(serve=serve, refuse=imap(application.hostname).refuse)

    app.handlers["imap"] = echo
    raise SystemExit(app.run(load(sys.argv[1])))
    """
)


@contextlib.contextmanager
def _server(tmp_path: Path, cfg_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(cfg_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1].decode()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    pytest.fail(f"port {port} never answered")


def _tls_connect(port: int) -> tuple[ssl.SSLSocket, bytes]:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = _insecure_client().wrap_socket(raw, server_hostname=HOSTNAME)
    cert = conn.getpeercert(binary_form=True)
    assert cert is not None
    return conn, cert


def _recv_line(conn: ssl.SSLSocket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


@pytest.mark.slow
def test_process_reloads_certificate_on_sighup_and_exits_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    imaps, smtp = free_ports(2)
    cfg_path = _write_config(tmp_path, {"imaps": imaps, "smtp": smtp}, grace=5)
    with _server(tmp_path, cfg_path) as proc:
        _wait_for_port(imaps, proc)
        # One worker answering is not all of them: the settings table comes once every worker
        # serves, and only then is a SIGHUP or SIGTERM below sure to find them all started.
        wait_ready(proc)
        before, old_cert = _tls_connect(imaps)
        assert _recv_line(before) == b"* OK ready\r\n"
        assert old_cert == _der((tmp_path / "tls" / "cert.pem").read_bytes())

        cert_pem, key_pem = make_self_signed(HOSTNAME)
        (tmp_path / "tls" / "key.pem").write_bytes(key_pem)
        (tmp_path / "tls" / "cert.pem").write_bytes(cert_pem)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            after, new_cert = _tls_connect(imaps)
            if new_cert != old_cert or time.monotonic() > deadline:
                break
            after.close()
            time.sleep(0.05)
        assert new_cert == _der(cert_pem)
        assert _recv_line(after) == b"* OK ready\r\n"
        # The connection made before the reload is still open, working, on the old certificate.
        before.sendall(b"still here\r\n")
        assert _recv_line(before) == b"ECHO still here\r\n"
        assert before.getpeercert(binary_form=True) == old_cert
        after.close()

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # The idle session is told why it is closed, in its own protocol.
        assert _recv_line(before).startswith(b"* BYE [UNAVAILABLE] mail.test server shutting down")
        before.close()
        # A second SIGTERM while shutting down (systemd, an impatient operator) changes nothing.
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
        _, err = proc.communicate(timeout=5)
    log = err.decode()
    assert "TLS certificate reloaded" in log
    assert "signal=SIGTERM" in log
    connected = [ln for ln in log.splitlines() if " connected " in ln or ln.endswith(" connected")]
    assert connected and all(" conn=" in ln and "listener=imaps" in ln for ln in connected)
