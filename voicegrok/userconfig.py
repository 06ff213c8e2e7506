"""The user's saved preferences: a small TOML file in their config folder.

The terminal UI's settings screen writes it; ``ui``, ``talk`` and ``connect`` read it, and
flags given on the command line win over it for that run (:meth:`UserConfig.with_flags`)
without being saved into it. The default place is ``platformdirs.user_config_dir`` (e.g.
``~/.config/voicegrok/config.toml`` on Linux); ``--config FILE`` or ``VOICEGROK_CONFIG``
points elsewhere.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from .config import Settings
from .endpointing import EndpointConfig
from .errors import UsageError, first_line

__all__ = [
    "DEFAULT_GREETING",
    "MAX_GREETING_CHARS",
    "McpServer",
    "UserConfig",
    "default_config_path",
    "load_user_config",
    "save_user_config",
]

DEFAULT_GREETING = "Hi, I'm voicegrok. What can I do for you today?"
"""Said when a live conversation starts with the echo canceller on (see
:meth:`~voicegrok.live.LiveSession.will_greet`). The canceller needs a second of the
speaker's sound, and a quarter second more to judge it, before it trusts itself: this is
3.2 s of speech in the default voice, 2.2 s of it voiced. "Hi! What can I do for you?"
(1.6 s, 1.0 s voiced) left it still learning on the rig, and the first answer waited."""
MAX_GREETING_CHARS = 300

SENSITIVITY_SILENCE_MS = {"fast": 320, "normal": 480, "patient": 800}
"""End-of-turn sensitivity: how long a silence ends the turn (ms)."""
UNSURE_SILENCE_MS = {"fast": 480, "normal": 800, "patient": 1200}
"""... with the end-of-turn model, when the words or the voice leave doubt (a voice that
sounds finished after finished words is answered after 250 ms; see
:func:`~voicegrok.endpointing.when_to_answer`)."""


@dataclass(frozen=True)
class McpServer:
    """One ``[mcp.NAME]`` table of the config: ``command`` (with ``args``, ``env``) for a
    server run over stdio, or ``url`` for a streamable-HTTP one."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str | None = None

    def to_toml(self) -> dict[str, Any]:
        if self.url is not None:
            return {"url": self.url}
        table: dict[str, Any] = {"command": self.command, "args": list(self.args)}
        if self.env:
            table["env"] = dict(self.env)
        return table


def parse_servers(table: object, where: str) -> tuple[McpServer, ...]:
    """The ``mcp`` table of a config file (``where`` names it in errors)."""
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: mcp must be a table of servers, [mcp.NAME]")
    servers = []
    for name, spec in table.items():
        at = f"{where}: mcp.{name}"
        if not isinstance(spec, Mapping):
            raise UsageError(f"{at} must be a table (command = ..., or url = ...)")
        unknown = sorted(set(spec) - {"command", "args", "env", "url"})
        if unknown:
            raise UsageError(f"{at}: unknown key {unknown[0]!r} (command, args, env, url)")
        command, url = spec.get("command"), spec.get("url")
        if (command is None) == (url is None):
            raise UsageError(f"{at} needs either command (stdio) or url (streamable HTTP)")
        args, env = spec.get("args", []), spec.get("env", {})
        if not isinstance(command or url, str):
            raise UsageError(f"{at}: command and url are strings")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise UsageError(f"{at}: args must be a list of strings")
        if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
            raise UsageError(f"{at}: env must be a table of strings")
        servers.append(McpServer(str(name), command, tuple(args), tuple(sorted(env.items())), url))
    return tuple(servers)


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
    greeting: str = DEFAULT_GREETING
    """Said when a live conversation starts with the echo canceller on ("": nothing)."""
    mcp: tuple[McpServer, ...] = ()
    """MCP servers whose tools the assistant may call (``[mcp.NAME]`` tables)."""
    flags: Mapping[str, tuple[str | None, str]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Settings given as command-line flags for this run only: name -> (the value saved
    under the flag, the flag's value). Never saved itself; see :meth:`to_toml`."""

    @property
    def end_silence_ms(self) -> int:
        return SENSITIVITY_SILENCE_MS[self.end_of_turn]

    @property
    def unsure_end_ms(self) -> int:
        return UNSURE_SILENCE_MS[self.end_of_turn]

    def endpointing(self) -> EndpointConfig:
        """The end-of-turn settings this sensitivity stands for."""
        return EndpointConfig(end_silence_ms=self.end_silence_ms, unsure_end_ms=self.unsure_end_ms)

    def over(self, settings: Settings) -> Settings:
        """``settings`` with the models and voice chosen here in place of theirs."""
        return replace(
            settings,
            llm_model=self.llm_model or settings.llm_model,
            voice=self.voice or settings.voice,
            stt_model=self.stt_model or settings.stt_model,
        )

    def with_flags(self, **values: str | None) -> UserConfig:
        """This config with one-off command-line values on top (None: that flag was not
        given). They are used in this run; saving keeps them out of the file, unless the
        person changes that setting (:meth:`choose`)."""
        flags = dict(self.flags)
        given: dict[str, Any] = {}
        for name, value in values.items():
            if name not in SAVED:
                raise TypeError(f"{name!r} is not a setting")
            if value is not None:
                under = flags[name][0] if name in flags else getattr(self, name)
                flags[name] = (under, value)
                given[name] = value
        return replace(self, **given, flags=flags)

    def choose(self, **values: Any) -> UserConfig:
        """This config with what the person chose on the settings screen. A setting given
        by a flag and left as it was stays out of the file; one they changed is theirs
        now, saved like any other."""
        kept = {
            name: flag
            for name, flag in self.flags.items()
            if values.get(name, getattr(self, name)) == getattr(self, name)
        }
        return replace(self, **values, flags=kept)

    def to_toml(self) -> dict[str, Any]:
        """What the file holds: every setting that is not the default, except that a flag's
        value left unchanged gives way to the value saved under it."""
        data: dict[str, Any] = {name: getattr(self, name) for name in SAVED}
        for name, (under, flag) in self.flags.items():
            if data[name] == flag:
                data[name] = under
        data["mcp"] = {s.name: s.to_toml() for s in self.mcp} or None
        return {k: v for k, v in data.items() if v is not None}


SAVED = tuple(f.name for f in fields(UserConfig) if f.name != "flags")
"""The settings a config file holds."""


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
    known = set(SAVED)
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(
            f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    servers = parse_servers(data.pop("mcp", {}), str(path))
    for key, value in data.items():
        if not isinstance(value, str):
            raise UsageError(f"{path}: {key} must be a string, not {value!r}")
    config = replace(UserConfig(), **data, mcp=servers)
    if config.end_of_turn not in SENSITIVITY_SILENCE_MS:
        choices = ", ".join(SENSITIVITY_SILENCE_MS)
        raise UsageError(f"{path}: end_of_turn must be one of {choices}")
    if len(config.greeting) > MAX_GREETING_CHARS:
        raise UsageError(
            f"{path}: greeting is {len(config.greeting)} characters, at most {MAX_GREETING_CHARS}"
        )
    return config


def save_user_config(config: UserConfig, path: Path | None = None) -> Path:
    """Write the config atomically (a crash never leaves half a file). Returns the path."""
    path = path or default_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(config.to_toml()), encoding="utf-8")
    tmp.replace(path)
    return path
