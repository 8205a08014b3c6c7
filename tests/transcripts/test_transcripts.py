"""Runs every transcript under tests/transcripts/<protocol>/ against a real courriel server."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.testing.transcript import run_transcript

HERE = Path(__file__).parent
# messages/ holds the files @deliver stores, include/ the steps @include inserts.
FILES = sorted(p for p in HERE.glob("*/*.txt") if p.parent.name not in ("messages", "include"))


@pytest.fixture(scope="session")
def transcript_cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transcript-tls")


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
async def test_transcript(path: Path, tmp_path: Path, transcript_cert_dir: Path) -> None:
    await run_transcript(path, tmp_path, transcript_cert_dir)
