"""The terminal UI: the conversation live, with streamed tokens, live tokens per second and
where each millisecond of every turn went.

The app only consumes frames (:meth:`VoicegrokApp.show` is the live session's view) and
sends commands to the :class:`~voicegrok.live.LiveSession` (a typed question, interrupt,
new conversation, mute, push-to-talk). Devices and models come from a
:class:`~voicegrok.ui.backend.Backend`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Markdown, Sparkline, Static

from ..config import Settings
from ..conversation import Conversation
from ..endpointing import EndpointConfig
from ..errors import VoicegrokError
from ..frames import (
    Frame,
    Interrupt,
    LLMDone,
    LLMToken,
    SpeechStarted,
    TTSAudio,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from ..live import LiveSession
from ..userconfig import UserConfig, save_user_config
from .backend import Backend, LocalBackend, Probe
from .screens import HelpScreen, SettingsScreen

__all__ = ["VoicegrokApp"]

STATUS_TICK_S = 0.1  # seconds between meter and state refreshes: smooth, and cheap
TOKEN_FLUSH_S = 0.08  # seconds between token batches: each Markdown update re-parses the answer
INTERRUPTED_SHOWN_S = 1.5  # seconds "interrupted" stays up: long enough to be read
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


@dataclass
class _Shown:
    """The widgets of one turn in the conversation."""

    user: Static | None = None
    answer: Markdown | None = None
    pending: str = ""
    """Tokens not yet handed to the Markdown widget (flushed a few times a second)."""
    final: str | None = None
    """The whole answer, once done: replaces the streamed text (one clean parse)."""
    n_tokens: int = 0
    first_token_s: float | None = None
    last_token_s: float | None = None

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_s is None or self.last_token_s is None or self.n_tokens < 2:
            return None
        span = self.last_token_s - self.first_token_s
        return (self.n_tokens - 1) / span if span > 0 else None


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


def _meter(level: float, width: int = METER_WIDTH) -> str:
    """A loudness bar: RMS mapped to ``METER_FLOOR_DBFS``..0 dBFS."""
    import math

    db = 20 * math.log10(max(level, 1e-6))
    span = -METER_FLOOR_DBFS
    filled = max(0, min(width, round((db + span) / span * width)))
    return "█" * filled + "░" * (width - filled)


class VoicegrokApp(App[None]):
    """``voicegrok`` in a terminal."""

    CSS_PATH = "app.tcss"
    TITLE = "voicegrok"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "interrupt", "Interrupt"),
        Binding("f1", "help", "Help"),
        Binding("f2", "settings", "Settings"),
        Binding("f3", "mute", "Mute mic"),
        Binding("f4", "push_to_talk", "Push to talk"),
        Binding("ctrl+n", "new_conversation", "New chat"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    state: reactive[str] = reactive("loading")

    def __init__(
        self,
        settings: Settings | None = None,
        config: UserConfig | None = None,
        *,
        config_path: Path | None = None,
        backend: Backend | None = None,
    ) -> None:
        super().__init__()
        self.base_settings = settings or Settings()
        self.config = config or UserConfig()
        self.config_path = config_path
        self.backend: Backend = backend or LocalBackend()
        self.session: LiveSession | None = None
        self.conversation = Conversation(self.base_settings.system_prompt)
        """Kept across restarts (new settings): the assistant remembers the conversation."""
        self.probe = Probe()
        self._turns: dict[int, _Shown] = {}
        self._partial: Static | None = None
        self._first_audio: deque[float] = deque(maxlen=SPARK_TURNS)
        self._state_until = 0.0
        self._stages_text = ""
        self._exit_started = False
        self._flushing = False
        """Tokens taken from a turn are being rendered (``settled`` waits for that)."""

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="♪")
        yield Static("", id="banner")
        with Horizontal(id="main"):
            yield VerticalScroll(id="chat")
            with Vertical(id="side"):
                yield Static(STATES["loading"], id="state")
                yield Static(_meter(0.0), id="meter")
                yield Static("– tokens/s", id="speed")
                yield Static("", id="stages")
                yield Static("end of speech → first audio (ms)", classes="caption")
                yield Sparkline([], id="spark")
                yield DataTable(id="turns", show_cursor=False, zebra_stripes=True)
                yield Static("", id="info")
        yield Input(placeholder="Type a question and press Enter…", id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        table = self._main.query_one("#turns", DataTable)
        table.add_columns("#", "STT", "1st tok", "1st audio", "tok/s")
        self._main.query_one("#banner").display = False
        self.set_interval(STATUS_TICK_S, self._tick)
        self.set_interval(TOKEN_FLUSH_S, self._flush_tokens)
        self._main.query_one("#prompt", Input).focus()
        self.start_session()

    @property
    def _leaving(self) -> bool:
        """Exiting, or its screens already gone (timers may still fire once then)."""
        return self._exit_started or not self.screen_stack

    @property
    def _main(self) -> Screen[object]:
        """The conversation screen (``query_one`` would search a dialog open on top)."""
        return self.screen_stack[0]

    # ------------------------------------------------------------------ session

    def effective_settings(self) -> Settings:
        c, s = self.config, self.base_settings
        return replace(
            s,
            llm_model=c.llm_model or s.llm_model,
            voice=c.voice or s.voice,
            stt_model=c.stt_model or s.stt_model,
        )

    @work(exclusive=True, group="session")
    async def start_session(self) -> None:
        """Load the models, open the devices and run the live loop until replaced."""
        self.session = None
        self.state = "loading"
        settings = self.effective_settings()
        self.probe = probe = await asyncio.to_thread(self.backend.probe, self.config)
        listen, speak = probe.mic is not None, probe.speaker is not None

        def progress(message: str) -> None:
            self.call_from_thread(self._set_state_text, f"◌ {message}")

        try:
            engines = await asyncio.to_thread(
                self.backend.load, settings, listen=listen, speak=speak, progress=progress
            )
        except VoicegrokError as e:
            self.state = "error"
            self._notice(f"error: {e}", "error")
            self._banner([str(e)])
            return
        audio = self.backend.open_audio(self.config, probe, engines)
        self._banner(probe.problems + audio.problems, typed_only=audio.chunks is None)
        self._show_info(settings, engines.load_s, audio.echo_cancel)
        endpointing = EndpointConfig(end_silence_ms=self.config.end_silence_ms)
        try:
            async with self.backend.assistant(
                engines, settings, self.conversation, endpointing
            ) as assistant:
                session = LiveSession(
                    assistant, audio.speaker, view=self.show, on_metrics=self._device_metrics
                )
                self.session = session
                self.state = "listening" if audio.chunks is not None else "typing"
                await session.run(audio.chunks, audio.sample_rate_hz)
        except VoicegrokError as e:  # e.g. the server of voicegrok connect went away
            self.state = "error"
            self._notice(f"error: {e}", "error")
            self._banner([str(e)])
        finally:
            self.session = None
            audio.close()
            engines.close()

    def on_unmount(self) -> None:
        self._exit_started = True

    def _show_info(self, settings: Settings, load_s: dict[str, float], echo: bool) -> None:
        from .. import models

        def name(kind: str, spec: str | None) -> str:
            if spec is None:
                return models.DEFAULTS[kind].name
            return Path(spec).name

        loaded = ", ".join(f"{k} {v:.1f} s" for k, v in load_s.items())
        server = getattr(self.backend, "url", None)  # voicegrok connect: models over there
        lines = (
            [f"server {server}"]
            if server
            else [
                f"LLM    {name('llm', settings.llm_model)}",
                f"STT    {name('stt', settings.stt_model)}" if "stt" in load_s else "STT    –",
                f"voice  {name('tts', settings.voice)}" if "tts" in load_s else "voice  –",
            ]
        ) + [
            f"mic    {self.probe.mic or '–'}",
            f"out    {self.probe.speaker or '–'}",
            "echo   "
            + ("–" if self.probe.mic is None else "cancelled" if echo else "use a headset"),
        ]
        if loaded:
            lines.append(f"loaded {loaded}")
        self._main.query_one("#info", Static).update("\n".join(lines))

    def _banner(self, problems: list[str], *, typed_only: bool = False) -> None:
        banner = self._main.query_one("#banner", Static)
        if not problems:
            banner.display = False
            return
        text = " · ".join(problems)
        if typed_only:
            text += "  →  typed chat: answers are shown (and spoken when there is a speaker)"
        banner.update(text)
        banner.display = True

    # ------------------------------------------------------------------ frames

    def show(self, frame: Frame) -> None:
        """The live session's view: called with every frame worth showing."""
        if self._leaving:
            return
        try:
            self._show(frame)
        except NoMatches:  # frames still arriving while the app closes: nobody is looking
            if not self._leaving and self.screen_stack[0].is_mounted:
                raise

    def _show(self, frame: Frame) -> None:
        chat = self._main.query_one("#chat", VerticalScroll)
        if isinstance(frame, SpeechStarted):
            self.state = "hearing"
            if self._partial is None:
                self._partial = Static("…", classes="partial")
                chat.mount(self._partial)
                chat.scroll_end(animate=False)
        elif isinstance(frame, UserText) and not frame.final:
            if self._partial is None:
                self._partial = Static("", classes="partial")
                chat.mount(self._partial)
            self._partial.update(f"… {frame.text}")
            chat.scroll_end(animate=False)
        elif isinstance(frame, TurnRetracted):
            shown = self._turns.pop(frame.turn_id, None)
            if shown is not None:
                for widget in (shown.user, shown.answer):
                    if widget is not None:
                        widget.remove()
            self.state = "hearing"
        elif isinstance(frame, TurnStarted):
            self._turns[frame.turn_id] = _Shown()
            self.state = "thinking"
        elif isinstance(frame, UserText):
            shown = self._turns.setdefault(frame.turn_id, _Shown())
            if self._partial is not None:
                self._partial.remove()
                self._partial = None
            shown.user = Static(f"you: {frame.text}", classes="user")
            shown.answer = Markdown("", classes="answer")
            chat.mount(shown.user, shown.answer)
            chat.scroll_end(animate=False)
        elif isinstance(frame, LLMToken):
            shown = self._turns.get(frame.turn_id)
            if shown is not None:
                shown.pending += frame.text
                shown.n_tokens += 1
                shown.last_token_s = frame.at_s
                if shown.first_token_s is None:
                    shown.first_token_s = frame.at_s
                self._show_speed(shown.tokens_per_s, shown.n_tokens, live=True)
        elif isinstance(frame, TTSAudio):
            if self.state in ("thinking", "listening", "typing"):
                self.state = "speaking"
        elif isinstance(frame, LLMDone):
            shown = self._turns.get(frame.turn_id)
            if shown is not None:
                shown.final = frame.text
        elif isinstance(frame, TurnMetrics):
            self._show_metrics(frame)
        elif isinstance(frame, TurnFailed):
            self._notice(f"could not answer: {frame.message}", "error")
            self._idle()
        elif isinstance(frame, Interrupt) and frame.reason:
            self._notice(f"({frame.reason})", "notice")
            self.state = "interrupted"
            self._state_until = asyncio.get_running_loop().time() + INTERRUPTED_SHOWN_S

    @property
    def settled(self) -> bool:
        """Every streamed token is on the screen: none waits for the next flush, and no
        Markdown update is still being rendered."""
        return not self._flushing and all(
            not t.pending and t.final is None for t in self._turns.values()
        )

    async def _flush_tokens(self) -> None:
        if self._leaving:
            return
        self._flushing = True
        try:
            with contextlib.suppress(NoMatches):  # the app is closing
                await self._append_tokens()
        finally:
            self._flushing = False

    async def _append_tokens(self) -> None:
        for shown in list(self._turns.values()):
            if shown.answer is None or not (shown.pending or shown.final is not None):
                continue
            if not shown.answer.is_mounted:
                continue  # mounting is not awaited: an update before it was lost for good
            if shown.final is not None:
                final, shown.final, shown.pending = shown.final, None, ""
                await shown.answer.update(final)
            else:
                text, shown.pending = shown.pending, ""
                await shown.answer.append(text)
            self._main.query_one("#chat", VerticalScroll).scroll_end(animate=False)

    def _show_speed(self, tps: float | None, n: int, *, live: bool) -> None:
        rate = "–" if tps is None else f"{tps:.0f}"
        suffix = " (streaming)" if live else ""
        self._main.query_one("#speed", Static).update(f"{rate} tokens/s · {n} tokens{suffix}")

    def _show_metrics(self, m: TurnMetrics) -> None:
        self._show_speed(m.tokens_per_s, m.n_tokens, live=False)
        self._stages_text = "\n".join(
            [
                f"speech-to-text   {_ms(m.stt_ms):>6} ms",
                f"LLM first token  {_ms(m.llm_first_token_ms):>6} ms",
                f"TTS first audio  {_ms(m.tts_first_audio_ms):>6} ms",
                f"end → 1st audio  {_ms(m.first_audio_ms):>6} ms",
            ]
        )
        self._main.query_one("#stages", Static).update(self._stages_text)
        if m.first_audio_ms is not None:
            self._first_audio.append(m.first_audio_ms)
            if len(self._first_audio) > 1:  # one point would fill the whole box
                self._main.query_one("#spark", Sparkline).data = list(self._first_audio)
        table = self._main.query_one("#turns", DataTable)
        table.add_row(
            str(m.turn_id),
            _ms(m.stt_ms),
            _ms(m.llm_first_token_ms),
            _ms(m.first_audio_ms),
            f"{m.tokens_per_s:.0f}",
            key=str(m.turn_id),
        )
        while table.row_count > RECENT_TURNS:
            table.remove_row(next(iter(table.rows)))
        table.scroll_end(animate=False)
        if self.session is None or not self.session.speaking:
            self._idle()

    def _device_metrics(self, row: dict[str, object]) -> None:
        """The live loop's per-turn row: adds when the first sample reached the device."""
        if self._leaving:
            return
        device = row.get("first_audio_device_ms")
        if isinstance(device, (int, float)):
            self._main.query_one("#stages", Static).update(
                f"{self._stages_text}\nend → device     {device:>6.0f} ms"
            )

    def _notice(self, text: str, kind: str) -> None:
        chat = self._main.query_one("#chat", VerticalScroll)
        chat.mount(Static(text, classes=kind, markup=False))
        chat.scroll_end(animate=False)

    def _idle(self) -> None:
        listening = self.session is not None and self.probe.mic is not None
        self.state = "listening" if listening else "typing"

    # ------------------------------------------------------------------ status

    def _set_state_text(self, text: str) -> None:
        self._main.query_one("#state", Static).update(text)

    def watch_state(self, state: str) -> None:
        with contextlib.suppress(Exception):  # before compose
            self._set_state_text(STATES.get(state, state))
            self._main.query_one("#state").set_classes(f"state-{state}")

    def _tick(self) -> None:
        if self._leaving:
            return
        with contextlib.suppress(NoMatches):  # the app is closing
            self._update_status()

    def _update_status(self) -> None:
        session = self.session
        if session is None:
            return
        self._main.query_one("#meter", Static).update(_meter(session.level))
        now = asyncio.get_running_loop().time()
        if session.recording:
            self.state = "recording"
        elif session.muted and self.state in ("listening", "recording"):
            self.state = "muted"
        elif self.state == "recording" or (self.state == "muted" and not session.muted):
            self._idle()
        elif self.state == "speaking" and not session.answering:
            self._idle()
        elif self.state == "interrupted" and now > self._state_until:
            self._idle()

    # ------------------------------------------------------------------ commands

    @on(Input.Submitted, "#prompt")
    async def ask(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.session is None:
            self.notify("Still loading the models: ask again in a moment.", severity="warning")
            return
        event.input.value = ""
        await self.session.ask(text)

    async def action_interrupt(self) -> None:
        if self.session is not None and not await self.session.interrupt():
            self.notify("Nothing to interrupt.")

    async def action_new_conversation(self) -> None:
        if self.session is not None:
            await self.session.new_conversation()
        await self._main.query_one("#chat", VerticalScroll).remove_children()
        self._turns.clear()
        self._partial = None
        self.notify("New conversation: the history is forgotten.")

    def action_mute(self) -> None:
        if self.session is None or self.probe.mic is None:
            self.notify("No microphone.", severity="warning")
            return
        self.session.muted = not self.session.muted
        self.state = "muted" if self.session.muted else "listening"

    async def action_push_to_talk(self) -> None:
        session = self.session
        if session is None or self.probe.mic is None:
            self.notify("No microphone.", severity="warning")
            return
        if not session.recording:
            session.start_push_to_talk()
            self.state = "recording"
        elif not await session.stop_push_to_talk():
            self._idle()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_settings(self) -> None:
        screen = SettingsScreen(
            self.config,
            inputs=self.backend.devices("input"),
            outputs=self.backend.devices("output"),
        )
        self.push_screen(screen, self._settings_done)

    def _settings_done(self, config: UserConfig | None) -> None:
        if config is None or config == self.config:
            return
        try:
            path = save_user_config(config, self.config_path)
        except OSError as e:
            self.notify(f"Could not save the settings: {e}", severity="error")
            return
        self.config = config
        self.notify(f"Saved to {path}; restarting with the new settings.")
        self.start_session()
