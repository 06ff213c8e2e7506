"""The terminal UI: the conversation live, with streamed tokens, live tokens per second and
where each millisecond of every turn went.

The app only consumes frames (:meth:`VoicegrokApp.show` is the live session's view) and
sends commands to the :class:`~voicegrok.live.LiveSession` (a typed question, interrupt,
new conversation, mute, push-to-talk). Devices and models come from a
:class:`~voicegrok.ui.backend.Backend`.

This module owns the session's life, the app's state and the commands; it hands what each
frame means to the two views: the conversation (:class:`~voicegrok.ui.chat.ChatView`) and
the side panel of figures (:class:`~voicegrok.ui.panel.SidePanel`).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from ..adapters.keeper import DeviceKeeper
from ..config import Settings
from ..conversation import Conversation
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
from ..history import Recorder
from ..live import LiveSession
from ..userconfig import UserConfig, save_user_config
from .backend import Backend, LocalBackend, Probe
from .chat import ChatView, ShownTurn, side_note
from .panel import SidePanel
from .screens import HelpScreen, PastScreen, SettingsScreen

__all__ = ["VoicegrokApp"]

STATUS_TICK_S = 0.1  # seconds between meter and state refreshes: smooth, and cheap
INTERRUPTED_SHOWN_S = 1.5  # seconds "interrupted" stays up: long enough to be read
DEVICE_WATCH_S = 5.0  # seconds between looks for a missing microphone or speaker, when idle
SPEED_EVERY_S = 0.5  # seconds between live speed figures: readable, and each is drawn
STILL_CURSOR = frozenset({"thinking", "speaking"})
"""States in which the input's cursor does not blink: on two cores every redraw is taken
from the LLM, and a blink redraws a box from the input to any other change on the screen."""


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
        Binding("f5", "past", "Past chats"),
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
        metrics_path: Path | None = None,
        conversation: Conversation | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__()
        self.base_settings = settings or Settings()
        self.config = config or UserConfig()
        self.config_path = config_path
        self.backend: Backend = backend or LocalBackend()
        self.metrics_path = metrics_path
        """Where each turn's metrics are appended as a JSON line (``--metrics``)."""
        self.session: LiveSession | None = None
        self.conversation = conversation or Conversation(self.base_settings.system_prompt)
        """Kept across restarts (new settings): the assistant remembers the conversation."""
        self.recorder = recorder
        """Keeps the conversation on disk (None: ``--no-history``, or in tests)."""
        self.probe = Probe()
        self._state_until = 0.0
        self._audio_closed = asyncio.Event()
        """Set while no session holds the sound devices open."""
        self._audio_closed.set()
        self._devices_changed = False
        """A rescan found a new device: forget the old list before the next probe."""
        self._streaming: ShownTurn | None = None
        """The answer being streamed: the panel shows its speed with its tokens."""
        self._speed_due = 0.0
        """Loop time from which the next live speed figure may be shown."""
        self._blinks = True
        """Whether the input's cursor blinked before the answer stilled it."""
        self._keeper: DeviceKeeper | None = None
        """Watches the session's devices (None: none opened)."""
        self._exit_started = False

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="♪")
        yield Static("", id="banner")
        with Horizontal(id="main"):
            yield ChatView(id="chat")
            yield SidePanel(id="side")
        yield Input(placeholder="Type a question and press Enter…", id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self._chat.on_flush = self._show_speed
        self._main.query_one("#banner").display = False
        self.set_interval(STATUS_TICK_S, self._tick)
        self.set_interval(DEVICE_WATCH_S, self._watch_devices)
        self._main.query_one("#prompt", Input).focus()
        self._show_kept()
        self.start_session()

    def _show_kept(self, which: int | None = None) -> None:
        """A resumed conversation: its turns, and a line saying which one it is."""
        if which is None and self.recorder is not None:
            which = self.recorder.conversation
        if self.conversation.turns:
            self._chat.show_past(self.conversation.turns)
            n = sum(1 for m in self.conversation.turns if m["role"] == "user")
            self._chat.notice(f"(conversation {which}: {n} turns back, it goes on)", "notice")

    @property
    def _leaving(self) -> bool:
        """Exiting, or its screens already gone (timers may still fire once then)."""
        return self._exit_started or not self.screen_stack

    @property
    def _main(self) -> Screen[object]:
        """The conversation screen (``query_one`` would search a dialog open on top)."""
        return self.screen_stack[0]

    @property
    def _chat(self) -> ChatView:
        return self._main.query_one("#chat", ChatView)

    @property
    def _panel(self) -> SidePanel:
        return self._main.query_one("#side", SidePanel)

    # ------------------------------------------------------------------ session

    @work(exclusive=True, group="session")
    async def start_session(self) -> None:
        """Load the models, open the devices and run the live loop until replaced."""
        self.session = None
        self.state = "loading"
        settings = self.config.over(self.base_settings)
        await self._audio_closed.wait()  # the session this one replaces has let go of them
        if self._devices_changed:  # a device was plugged in: this process must see it too
            self._devices_changed = False
            await asyncio.to_thread(self.backend.forget_devices)
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
            self._chat.notice(f"error: {e}", "error")
            self._banner([str(e)])
            return
        audio = self.backend.open_audio(self.config, probe, engines, self._device_notice)
        self._keeper = audio.keeper
        self._audio_closed.clear()
        self._banner(probe.problems + audio.problems, typed_only=audio.chunks is None)
        self._panel.show_info(
            settings,
            engines,
            probe=probe,
            echo=audio.echo_cancel,
            server=getattr(self.backend, "url", None),  # voicegrok connect: models over there
        )
        try:
            async with self.backend.assistant(
                engines, settings, self.conversation, self.config.endpointing()
            ) as assistant:
                session = LiveSession(
                    assistant,
                    audio.speaker,
                    view=self.show,
                    metrics_path=self.metrics_path,
                    on_metrics=self._device_metrics,
                    after_turn=engines.between_turns,
                    figures=audio.keeper.echo_figures if audio.keeper else None,
                    hears_over_speaker=audio.keeper.hears_over_speaker if audio.keeper else None,
                    greeting=self.config.greeting,
                    after_greeting=audio.keeper.relearn_echo if audio.keeper else None,
                )
                self.session = session
                if session.will_greet(listening=audio.chunks is not None):
                    self.state = "speaking"  # (then listening, once it has been played)
                else:
                    self.state = "listening" if audio.chunks is not None else "typing"
                await session.run(audio.chunks, audio.sample_rate_hz)
        except VoicegrokError as e:  # e.g. the server of voicegrok connect went away
            self.state = "error"
            self._chat.notice(f"error: {e}", "error")
            self._banner([str(e)])
        finally:
            self.session = None
            audio.close()
            self._audio_closed.set()
            engines.close()

    def on_unmount(self) -> None:
        self._exit_started = True

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
        chat = self._chat
        if (note := side_note(frame)) is not None:
            chat.notice(note, "notice")
        elif isinstance(frame, SpeechStarted):
            self.state = "hearing"
            chat.hearing()
        elif isinstance(frame, UserText) and not frame.final:
            chat.show_partial(frame.text)
        elif isinstance(frame, TurnRetracted):
            chat.retract(frame.turn_id)
            self.state = "hearing"
        elif isinstance(frame, TurnStarted):
            chat.start_turn(frame.turn_id)
            self.state = "thinking"
        elif isinstance(frame, UserText):
            chat.show_question(frame.turn_id, frame.text)
        elif isinstance(frame, LLMToken):
            shown = chat.add_token(frame)
            if shown is not None:
                self._streaming = shown  # its speed is shown with its tokens
        elif isinstance(frame, TTSAudio):
            if self.state in ("thinking", "listening", "typing"):
                self.state = "speaking"
        elif isinstance(frame, LLMDone):
            chat.finish_answer(frame.turn_id, frame.text)
        elif isinstance(frame, TurnMetrics):
            self._streaming = None
            self._panel.show_metrics(frame)
            if self.session is None or not self.session.speaking:
                self._idle()
        elif isinstance(frame, TurnFailed):
            chat.notice(f"could not answer: {frame.message}", "error")
            self._idle()
        elif isinstance(frame, Interrupt) and frame.reason:
            chat.notice(f"({frame.reason})", "notice")
            self.state = "interrupted"
            self._state_until = asyncio.get_running_loop().time() + INTERRUPTED_SHOWN_S

    @property
    def settled(self) -> bool:
        """Every streamed token is on the screen (see :attr:`ChatView.settled`)."""
        return self._chat.settled

    def _device_metrics(self, row: dict[str, object]) -> None:
        """The live loop's per-turn row: adds when the first sample reached the device."""
        if self.recorder is not None:
            self.recorder.metrics(row)
        if self._leaving:
            return
        device = row.get("first_audio_device_ms")
        if isinstance(device, (int, float)):
            # (a row written while the screen is being changed, a device rescan: not shown)
            with contextlib.suppress(NoMatches):
                self._panel.show_device_latency(device)

    def _device_notice(self, line: str) -> None:
        """A device was lost or is back: said in the conversation; while the microphone
        is gone the banner says the chat is typed."""
        if self._leaving:
            return
        self._chat.notice(f"({line})", "notice")
        lost = self._keeper.lost if self._keeper is not None else None
        problems = self.probe.problems + ([f"{lost} lost: waiting for it"] if lost else [])
        self._banner(problems, typed_only=bool(lost) or self.probe.mic is None)
        if self.state in ("listening", "typing", "muted"):
            self._idle()

    def _idle(self) -> None:
        mic_lost = self._keeper is not None and "microphone" in (self._keeper.lost or "")
        listening = self.session is not None and self.probe.mic is not None and not mic_lost
        self.state = "listening" if listening else "typing"

    # ------------------------------------------------------------------ status

    def _set_state_text(self, text: str) -> None:
        self._panel.show_state_text(text)

    def watch_state(self, old: str, state: str) -> None:
        with contextlib.suppress(Exception):  # before compose
            self._panel.state = state
            prompt = self.query_one("#prompt", Input)
            if state in STILL_CURSOR and old not in STILL_CURSOR:
                self._blinks, prompt.cursor_blink = prompt.cursor_blink, False
            elif old in STILL_CURSOR and state not in STILL_CURSOR:
                prompt.cursor_blink = self._blinks  # as it was

    def _tick(self) -> None:
        if self._leaving:
            return
        with contextlib.suppress(NoMatches):  # the app is closing
            self._update_status()

    def _show_speed(self) -> None:
        now = asyncio.get_running_loop().time()
        if (shown := self._streaming) is not None and now >= self._speed_due:
            self._speed_due = now + SPEED_EVERY_S
            self._panel.show_speed(shown.tokens_per_s, shown.n_tokens, live=True)

    def _update_status(self) -> None:
        session = self.session
        if session is None:
            return
        self._panel.show_level(session.level)
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

    def _watch_devices(self) -> None:
        """While a device is missing and nothing is being answered, look for it again."""
        session = self.session
        if self._leaving or session is None or session.answering or session.recording:
            return
        if self.probe.mic is None or self.probe.speaker is None:
            self.rescan_devices()

    @work(exclusive=True, group="devices")
    async def rescan_devices(self) -> None:
        """A microphone or speaker that was missing is there: the session starts again with
        it (the conversation goes on; the answers are spoken again once a speaker is back)."""
        before = self.probe
        now = await asyncio.to_thread(self.backend.rescan, self.config)
        found = now.found_since(before)
        session = self.session
        if not found or session is None or session.answering or self.probe is not before:
            return
        self._chat.notice(f"{' and '.join(found)} found: starting again with it", "notice")
        self._devices_changed = True
        self.start_session()

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
        await self._chat.clear()
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

    def action_past(self) -> None:
        if self.recorder is None:
            self.notify("No history is kept in this session (--no-history).", severity="warning")
            return
        self.push_screen(PastScreen(self.recorder.history.conversations(50)), self._open_past)

    async def _open_past(self, conversation: int | None) -> None:
        """Go on with a kept conversation: its turns back in the chat and in the context."""
        if conversation is None or self.recorder is None:
            return
        try:
            _, messages = self.recorder.history.messages(conversation)
        except VoicegrokError as e:
            self.notify(str(e), severity="error")
            return
        if self.session is not None:
            await self.session.new_conversation()  # stops any answer; the journal resets
        self.conversation.reset()
        self.conversation.turns = list(messages)
        self.recorder.reset(conversation)
        await self._chat.clear()
        self._show_kept(conversation)

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
