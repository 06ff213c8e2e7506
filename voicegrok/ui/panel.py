"""The side panel (``#side``): what the assistant is doing and where the time of each turn went.

:class:`SidePanel` owns the state line, the microphone level meter, the tokens/s figure,
the per-stage latencies of the last turn, the sparkline of first-audio times, the table of
recent turns and the models and devices in use. It only displays: the app decides what
the state is and hands it every figure to show.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Mount
from textual.reactive import var
from textual.widgets import DataTable, Sparkline, Static

from ..config import Settings
from ..frames import TurnMetrics
from ..loading import Engines
from .backend import Probe

__all__ = ["STATES", "SidePanel"]

SPARK_TURNS = 30  # turns of first-audio history in the sparkline: enough to show a trend
RECENT_TURNS = 8  # rows of the recent-turns table: the panel stays short, older rows go
METER_FLOOR_DBFS = -60.0  # the level meter spans this to 0 dB full scale; quieter shows empty
METER_WIDTH = 20  # characters of the level meter

STATES = {
    "loading": "◌ loading models…",
    "listening": "● listening",
    "typing": "⌨ type a question",
    "hearing": "◉ hearing you",
    "thinking": "◔ thinking",
    "speaking": "♪ speaking",
    "interrupted": "■ interrupted",
    "muted": "○ microphone muted",
    "recording": "◉ recording: F4 to send",
    "error": "✖ error",
}
"""The state line for each state of the app."""


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


def _meter(level: float, width: int = METER_WIDTH) -> str:
    """A loudness bar: RMS mapped to ``METER_FLOOR_DBFS``..0 dBFS."""
    db = 20 * math.log10(max(level, 1e-6))
    span = -METER_FLOOR_DBFS
    filled = max(0, min(width, round((db + span) / span * width)))
    return "█" * filled + "░" * (width - filled)


class SidePanel(Vertical):
    """The panel beside the conversation."""

    state: var[str] = var("loading", init=False)
    """A key of :data:`STATES`: the state line shows it, with the class ``state-<key>``."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._first_audio: deque[float] = deque(maxlen=SPARK_TURNS)
        self._stages_text = ""
        self._shown: dict[str, str] = {}
        """What each one-line figure shows now."""
        """The last turn's stage latencies (the device's figure comes later, added below)."""

    def compose(self) -> ComposeResult:
        yield Static(STATES["loading"], id="state")
        yield Static(_meter(0.0), id="meter")
        yield Static("– tokens/s", id="speed")
        yield Static("", id="stages")
        yield Static("end of speech → first audio (ms)", classes="caption")
        yield Sparkline([], id="spark")
        yield DataTable(id="turns", show_cursor=False, zebra_stripes=True)
        yield Static("", id="info")

    @on(Mount)
    def _add_columns(self) -> None:
        table = self.query_one("#turns", DataTable)
        table.add_columns("#", "STT", "1st tok", "1st audio", "tok/s")

    def watch_state(self, state: str) -> None:
        self.show_state_text(STATES.get(state, state))
        self.query_one("#state").set_classes(f"state-{state}")

    def show_state_text(self, text: str) -> None:
        """Any text on the state line (loading progress), until the state changes."""
        self.query_one("#state", Static).update(text)

    def show_level(self, level: float) -> None:
        """The microphone's RMS ``level`` (1.0 is full scale) on the meter."""
        self._update_line("#meter", _meter(level))

    def show_speed(self, tps: float | None, n: int, *, live: bool) -> None:
        """Tokens per second over ``n`` tokens; ``live`` while the answer still streams."""
        rate = "–" if tps is None else f"{tps:.0f}"
        suffix = " (streaming)" if live else ""
        self._update_line("#speed", f"{rate} tokens/s · {n} tokens{suffix}")

    def _update_line(self, selector: str, text: str) -> None:
        """A one-line figure, redrawn only when it changes (and never laid out again)."""
        if self._shown.get(selector) != text:
            self._shown[selector] = text
            self.query_one(selector, Static).update(text, layout=False)

    def show_metrics(self, m: TurnMetrics) -> None:
        """A finished turn: its final speed, stage latencies, sparkline point and table row."""
        self.show_speed(m.tokens_per_s, m.n_tokens, live=False)
        self._stages_text = "\n".join(
            [
                f"speech-to-text   {_ms(m.stt_ms):>6} ms",
                f"LLM first token  {_ms(m.llm_first_token_ms):>6} ms",
                f"TTS first audio  {_ms(m.tts_first_audio_ms):>6} ms",
                f"end → 1st audio  {_ms(m.first_audio_ms):>6} ms",
            ]
        )
        self.query_one("#stages", Static).update(self._stages_text)
        if m.first_audio_ms is not None:
            self._first_audio.append(m.first_audio_ms)
            if len(self._first_audio) > 1:  # one point would fill the whole box
                self.query_one("#spark", Sparkline).data = list(self._first_audio)
        table = self.query_one("#turns", DataTable)
        table.add_row(
            str(m.turn_id),
            _ms(m.stt_ms),
            _ms(m.llm_first_token_ms),
            _ms(m.first_audio_ms),
            f"{m.tokens_per_s:.0f}",
        )  # no key: turn ids start again with each session (new settings, a new device)
        while table.row_count > RECENT_TURNS:
            table.remove_row(next(iter(table.rows)))
        table.scroll_end(animate=False)

    def show_device_latency(self, device_ms: float) -> None:
        """Adds to the last turn's latencies when its first sample reached the device."""
        self.query_one("#stages", Static).update(
            f"{self._stages_text}\nend → device     {device_ms:>6.0f} ms"
        )

    def show_info(
        self,
        settings: Settings,
        engines: Engines,
        *,
        probe: Probe,
        echo: bool,
        server: str | None,
    ) -> None:
        """The models (or the ``server`` that runs them), the devices and the load times."""
        from .. import models

        def name(kind: str, spec: str | None) -> str:
            if spec is None:
                return models.DEFAULTS[kind].name
            return Path(spec).name

        load_s = engines.load_s
        loaded = ", ".join(f"{k} {v:.1f} s" for k, v in load_s.items())
        picked = engines.llm_choice
        llm = f"LLM    {name('llm', settings.llm_model)}"
        if picked is not None:  # and why: the default is chosen for this machine
            llm = f"LLM    {picked.name}" + (
                "" if picked.reason == "chosen by name" else f"\n       auto: {picked.reason}"
            )
        lines = (
            [f"server {server}"]
            if server
            else [
                f"LLM    {settings.llm_model or 'served'} at {settings.llm_url}"
                if settings.llm_url
                else llm,
                f"STT    {name('stt', settings.stt_model)}" if "stt" in load_s else "STT    –",
                f"voice  {name('tts', settings.voice)}" if "tts" in load_s else "voice  –",
            ]
        ) + [
            f"mic    {probe.mic or '–'}",
            f"out    {probe.speaker or '–'}",
            "echo   " + ("–" if probe.mic is None else "cancelled" if echo else "use a headset"),
        ]
        if loaded:
            lines.append(f"loaded {loaded}")
        self.query_one("#info", Static).update("\n".join(lines))
