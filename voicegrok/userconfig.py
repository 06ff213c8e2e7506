"""The user's saved preferences: a small TOML file in their config folder.

The terminal UI's settings screen writes it; every command reads it, and flags given on
the command line win over it. The default place is ``platformdirs.user_config_dir`` (e.g.
``~/.config/voicegrok/config.toml`` on Linux); ``--config FILE`` or ``VOICEGROK_CONFIG``
points elsewhere.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from .errors import UsageError, first_line

__all__ = ["UserConfig", "default_config_path", "load_user_config", "save_user_config"]

SENSITIVITY_SILENCE_MS = {"fast": 320, "normal": 480, "patient": 800}
"""End-of-turn sensitivity: how long a silence ends the turn (ms)."""


@dataclass(frozen=True)
class UserConfig:
    """What a person can choose in the settings screen. ``None`` means the built-in default."""

    input_device: str | None = None
    """Microphone: a device name or index (``voicegrok devices``)."""
    output_device: str | None = None
    voice: str | None = None
    """Piper voice: a path or catalog name."""
    llm_model: str | None = None
    """GGUF file or catalog name."""
    stt_model: str | None = None
    end_of_turn: str = "normal"
    """``fast``, ``normal`` or ``patient``: see :data:`SENSITIVITY_SILENCE_MS`."""

    @property
    def end_silence_ms(self) -> int:
        return SENSITIVITY_SILENCE_MS[self.end_of_turn]

    def to_toml(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def default_config_path() -> Path:
    env = os.environ.get("VOICEGROK_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("voicegrok", appauthor=False)) / "config.toml"


def load_user_config(path: Path | None = None) -> UserConfig:
    """Read the config (a missing file is the defaults). A broken file is a one-line error."""
    path = path or default_config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return UserConfig()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(
            f"{path}: cannot read the config ({first_line(e)}); fix or delete the file"
        ) from None
    known = {f.name for f in fields(UserConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(
            f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise UsageError(f"{path}: {key} must be a string, not {value!r}")
    config = replace(UserConfig(), **data)
    if config.end_of_turn not in SENSITIVITY_SILENCE_MS:
        choices = ", ".join(SENSITIVITY_SILENCE_MS)
        raise UsageError(f"{path}: end_of_turn must be one of {choices}")
    return config


def save_user_config(config: UserConfig, path: Path | None = None) -> Path:
    """Write the config atomically (a crash never leaves half a file). Returns the path."""
    path = path or default_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(config.to_toml()), encoding="utf-8")
    tmp.replace(path)
    return path
