"""Shared fixtures: the real embedded models (loaded once) and a CLI runner."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from voicegrok import models
from voicegrok.assistant import Engines, load_engines
from voicegrok.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
DEMO = ROOT / "assets" / "demo"


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """The real default models, loaded and warmed once for the whole session."""
    e = load_engines(Settings())
    yield e
    e.close()


def engines_with_vad(e: Engines) -> Engines:
    """The same loaded engines plus the Silero VAD (listening mode)."""
    from voicegrok.engines.silero import SileroVAD

    return dataclasses.replace(e, vad=SileroVAD(models.resolve("vad")))


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(tmp_path: Path) -> object:
    """Run ``voicegrok ARGS`` in a subprocess, as a user would (no sound device needed)."""

    def run(*args: str, timeout: float = 300) -> Run:
        env = dict(os.environ, VOICEGROK_MODELS_DIR=str(tmp_path / "models"))
        p = subprocess.run(
            [sys.executable, "-m", "voicegrok", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        return Run(p.returncode, p.stdout, p.stderr)

    return run


_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))
