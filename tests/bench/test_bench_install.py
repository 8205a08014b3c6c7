"""When Dovecot and Postfix may be installed and compared, and what is said when they may not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import install


def _policy(tmp_path: Path, status: int) -> Path:
    script = tmp_path / "policy-rc.d"
    script.write_text(f"#!/bin/sh\nexit {status}\n")
    script.chmod(0o755)
    return script


def test_services_count_as_blocked_only_when_policy_says_101(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(install, "POLICY", _policy(tmp_path, 101))
    assert install.services_blocked()
    monkeypatch.setattr(install, "POLICY", _policy(tmp_path, 0))
    assert not install.services_blocked()
    monkeypatch.setattr(install, "POLICY", tmp_path / "absent")
    assert not install.services_blocked()


def test_without_root_both_columns_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    problems = install.comparison_problems()
    assert set(problems) == {"dovecot", "postfix"}
    assert all("not root, comparison skipped" in why for why in problems.values())


def test_missing_packages_are_not_installed_where_services_would_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(install, "PACKAGES", ("courriel-no-such-package-for-bench",))
    monkeypatch.setattr(install, "POLICY", tmp_path / "absent")
    problems = install.comparison_problems()
    assert set(problems) == {"dovecot", "postfix"}
    why = problems["dovecot"]
    assert "apt-get install courriel-no-such-package-for-bench" in why
    assert "would start the system's own services" in why
