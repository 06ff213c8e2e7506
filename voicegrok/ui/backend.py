"""What the terminal UI needs from the outside world: devices and models.

The app talks to a :class:`Backend`; :class:`LocalBackend` opens the real sound devices and
loads the real models, and ``voicegrok.testing.FakeBackend`` scripts both for tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..adapters.keeper import DeviceKeeper
from ..adapters.virtual import VirtualSpeaker
from ..assistant import Assistant, Engines, load_engines
from ..config import Settings
from ..conversation import Conversation
from ..endpointing import EndpointConfig
from ..errors import VoicegrokError
from ..live import AudioOutput, LiveAssistant
from ..userconfig import McpServer, UserConfig

__all__ = ["Audio", "Backend", "LocalBackend", "Probe", "RemoteBackend"]

FloatAudio = npt.NDArray[np.float32]


@dataclass
class Probe:
    """Which devices exist, before anything is opened."""

    mic: str | None = None
    """Name of the microphone, or None when there is none."""
    speaker: str | None = None
    problems: list[str] = field(default_factory=list)
    """One line each, for the banner (e.g. "no microphone: ...")."""

    def found_since(self, before: Probe) -> list[str]:
        """The devices missing in ``before`` and here now ("microphone", "speaker")."""
        pairs = (("microphone", before.mic, self.mic), ("speaker", before.speaker, self.speaker))
        return [what for what, was, now in pairs if was is None and now is not None]


@dataclass
class Audio:
    """The opened devices of a session. With no speaker, replies go to a silent sink."""

    chunks: AsyncIterator[FloatAudio] | None
    sample_rate_hz: int
    speaker: AudioOutput
    close: Callable[[], None]
    problems: list[str] = field(default_factory=list)
    echo_cancel: bool = False
    keeper: DeviceKeeper | None = None
    """Watches the devices opened (one lost is reopened when it is back)."""


class Backend(Protocol):
    def probe(self, config: UserConfig) -> Probe: ...

    def forget_devices(self) -> None:
        """Read the list of devices again at the next probe (none may be open: blocking)."""
        ...

    def rescan(self, config: UserConfig) -> Probe:
        """Which devices exist now, including any plugged in since the app started
        (blocking: called on a worker thread)."""
        ...

    def devices(self, kind: str) -> list[tuple[str, str]]:
        """The ``"input"`` or ``"output"`` devices to choose from: (label, name) pairs."""
        ...

    def load(
        self,
        settings: Settings,
        *,
        listen: bool,
        speak: bool,
        progress: Callable[[str], None],
    ) -> Engines:
        """Load and warm the models (blocking: called on a worker thread)."""
        ...

    def open_audio(
        self,
        config: UserConfig,
        probe: Probe,
        engines: Engines,
        notify: Callable[[str], None] = lambda _line: None,
    ) -> Audio:
        """Open the devices (on the event loop); ``notify`` is told when one is lost or
        back."""
        ...

    def assistant(
        self,
        engines: Engines,
        settings: Settings,
        conversation: Conversation,
        endpointing: EndpointConfig,
    ) -> AbstractAsyncContextManager[LiveAssistant]:
        """The assistant the live loop talks to (``async with``)."""
        ...


def _silent_sink(rate_hz: int | None) -> VirtualSpeaker:
    return VirtualSpeaker(rate_hz or 22050, keep=False)


class LocalBackend:
    """This machine's sound devices (PortAudio) and models (the catalog)."""

    def __init__(self, *, echo_cancel: bool = True, mcp: tuple[McpServer, ...] = ()) -> None:
        from ..tools.timers import Timers

        self.echo_cancel = echo_cancel
        self.mcp = mcp
        """MCP servers whose tools each assistant gets (connected while it lives)."""
        self.timers = Timers()
        """The app's timers: every assistant it makes (settings change) keeps them."""

    def probe(self, config: UserConfig) -> Probe:
        from ..adapters.probe import find_devices

        found = find_devices(config.input_device, config.output_device)
        return Probe(found.mic, found.speaker, found.problems)

    def forget_devices(self) -> None:
        from ..adapters.probe import forget_devices

        forget_devices()

    def rescan(self, config: UserConfig) -> Probe:
        from ..adapters.probe import find_devices_afresh

        found = find_devices_afresh(config.input_device, config.output_device)
        return Probe(found.mic, found.speaker, found.problems)

    def devices(self, kind: str) -> list[tuple[str, str]]:
        from ..adapters.microphone import list_devices

        try:
            rows = list_devices()
        except VoicegrokError:
            return []
        key = "inputs" if kind == "input" else "outputs"
        return [
            (f"{r['index']}: {r['name']}", str(r["name"])) for r in rows if int(str(r[key])) > 0
        ]

    def load(
        self,
        settings: Settings,
        *,
        listen: bool,
        speak: bool,
        progress: Callable[[str], None],
    ) -> Engines:
        return load_engines(settings, stt=listen, tts=speak, vad=listen, progress=progress)

    def speaker_rate_hz(self, engines: Engines) -> int | None:
        """The rate answers are played at (None: nothing is spoken)."""
        return engines.tts.sample_rate_hz if engines.tts is not None else None

    def listens(self, engines: Engines) -> bool:
        return engines.vad is not None

    def assistant(
        self,
        engines: Engines,
        settings: Settings,
        conversation: Conversation,
        endpointing: EndpointConfig,
    ) -> AbstractAsyncContextManager[LiveAssistant]:
        def make() -> Assistant:
            return Assistant(
                engines, settings, conversation, endpointing, realtime=True, timers=self.timers
            )

        return _with_mcp(self.mcp, engines, make) if self.mcp else make()

    def open_audio(
        self,
        config: UserConfig,
        probe: Probe,
        engines: Engines,
        notify: Callable[[str], None] = lambda _line: None,
    ) -> Audio:
        from ..adapters.devices import open_devices
        from ..adapters.keeper import DeviceKeeper

        rate_out = self.speaker_rate_hz(engines)
        devices = open_devices(
            listen=probe.mic is not None and self.listens(engines),
            speaker_rate_hz=rate_out if probe.speaker is not None else None,
            input_device=config.input_device,
            output_device=config.output_device,
            echo_cancel=self.echo_cancel,
        )
        if devices.mic is None and devices.speaker is None:
            return Audio(
                chunks=None,
                sample_rate_hz=devices.sample_rate_hz,
                speaker=_silent_sink(rate_out),
                close=devices.close,
                problems=devices.problems,
            )
        keeper = DeviceKeeper(
            devices,
            listen=devices.mic is not None,
            speaker_rate_hz=rate_out,
            input_device=config.input_device,
            output_device=config.output_device,
            echo_cancel=self.echo_cancel,
            notify=notify,
        )
        keeper.start()
        return Audio(
            chunks=keeper.chunks() if devices.mic is not None else None,
            sample_rate_hz=keeper.sample_rate_hz,
            speaker=keeper.speaker,
            close=keeper.close,
            problems=devices.problems,
            echo_cancel=devices.canceller is not None,
            keeper=keeper,
        )


class RemoteBackend(LocalBackend):
    """This machine's microphone and speaker; the models run on a ``voicegrok serve``."""

    def __init__(self, url: str, token: str | None = None, *, echo_cancel: bool = True) -> None:
        super().__init__(echo_cancel=echo_cancel)
        self.url, self.token = url, token

    def load(
        self,
        settings: Settings,
        *,
        listen: bool,
        speak: bool,
        progress: Callable[[str], None],
    ) -> Engines:
        progress(f"the server at {self.url} does the thinking")
        return Engines()

    def speaker_rate_hz(self, engines: Engines) -> int | None:
        from ..remote import RATE_HZ

        return RATE_HZ

    def listens(self, engines: Engines) -> bool:
        return True

    def assistant(
        self,
        engines: Engines,
        settings: Settings,
        conversation: Conversation,
        endpointing: EndpointConfig,
    ) -> AbstractAsyncContextManager[LiveAssistant]:
        from ..remote import RemoteAssistant

        return RemoteAssistant(self.url, self.token)


@asynccontextmanager
async def _with_mcp(
    servers: tuple[McpServer, ...], engines: Engines, make: Callable[[], Assistant]
) -> AsyncIterator[Assistant]:
    """An assistant with the tools of ``servers`` (a server that fails is logged and left
    out: the UI shows no stderr)."""
    import logging

    from ..adapters.mcp import mcp_tools

    log = logging.getLogger(__name__)
    async with mcp_tools(servers, log.warning) as tools:
        engines.tools = tools
        try:
            async with make() as assistant:
                yield assistant
        finally:
            engines.tools = []
