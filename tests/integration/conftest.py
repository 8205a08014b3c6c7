"""Fixtures for the relay tests: a test CA, the dnsmasq program, and a private receiving Postfix.

The helpers live in ``courriel.testing`` (``certs``, ``dnsmasq``, ``postfix``, ``relay``,
``scripted_smtp``); these fixtures only start and stop things around a test.

* ``test_ca``: one ``TestCA`` for the run; ``test_ca.ca_file`` is what the relay trusts.
* ``dnsmasq_ready``: checks dnsmasq is installed (skips, or fails under CI); start it with
  ``courriel.testing.dnsmasq.start_dnsmasq(Zone(...))``.
* ``receiver``: Postfix on a free loopback address, port 25, for the domain
  ``receiver.test`` with users alice, bob and carol, STARTTLS with a certificate from
  ``test_ca`` for mx1/mx2/mx.receiver.test. Needs root (port 25) and Postfix.
* ``untrusted_receiver``: the same with a certificate no trusted CA signed.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.testing import dnsmasq, postfix
from courriel.testing.certs import TestCA, self_signed
from courriel.testing.missing import report_missing
from courriel.testing.relay import (
    RECEIVER_DOMAIN,
    RECEIVER_NAMES,
    RECEIVER_USERS,
    free_address,
    private_directory,
)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def dnsmasq_ready(request: pytest.FixtureRequest) -> None:
    if dnsmasq.program() is None:
        report_missing("program 'dnsmasq'", request.node.nodeid)


@contextlib.asynccontextmanager
async def _postfix(cert: Path, key: Path) -> AsyncIterator[postfix.Postfix]:
    # Postfix's daemons run as the postfix user and must reach their directories: pytest's
    # temporary tree is private to root, so Postfix gets a directory of its own in /tmp.
    root = private_directory("courriel-postfix-")
    try:
        async with postfix.start_postfix(
            root,
            address=free_address(25),
            domains=[RECEIVER_DOMAIN],
            users=RECEIVER_USERS,
            cert=cert,
            key=key,
        ) as instance:
            yield instance
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def receiver(
    request: pytest.FixtureRequest, test_ca: TestCA
) -> AsyncIterator[postfix.Postfix]:
    if not postfix.available():
        report_missing("Postfix run as root", request.node.nodeid)
    async with _postfix(*test_ca.issue("receiver", RECEIVER_NAMES)) as instance:
        yield instance


@pytest.fixture
async def untrusted_receiver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[postfix.Postfix]:
    """Like ``receiver``, with a certificate for the right names that no trusted CA signed."""
    if not postfix.available():
        report_missing("Postfix run as root", request.node.nodeid)
    async with _postfix(*self_signed(tmp_path, "untrusted", RECEIVER_NAMES)) as instance:
        yield instance
