"""The terminal UI, driven with Textual's pilot: typed and spoken turns, live tokens/s,
interruption, settings saved and reloaded, errors shown in the UI. Engines are scripted
fakes (the UI's logic is under test here; the real models are in test_ui_terminal.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Markdown, Select, Static

from voicegrok.conversation import Conversation
from voicegrok.frames import (
    LLMDone,
    LLMToken,
    SpeechStarted,
    TurnMetrics,
    TurnStarted,
    UserText,
)
from voicegrok.loading import Engines
from voicegrok.testing import FakeBackend, FakeChat, FakeSTT, FakeTTS, fake_engines
from voicegrok.ui import VoicegrokApp
from voicegrok.ui.chat import ChatView
from voicegrok.ui.screens import HelpScreen, PastScreen, SettingsScreen
from voicegrok.userconfig import UserConfig, load_user_config

from .conftest import silence, tone

SIZE = (120, 40)
TABLE_ANSWER = (
    "Here is your plan:\n\n"
    "| Day | Place | Cost |\n| --- | --- | --- |\n"
    "| 1 | High Line | free |\n| 2 | Queens food tour | $40 |\n\n"
    "Enjoy your trip!"
)


def app_with(
    reply: str = TABLE_ANSWER, delay_s: float = 0.01, load_error: str | None = None
) -> tuple[VoicegrokApp, FakeChat]:
    """A typed-chat app (no devices) whose LLM streams ``reply``, ``delay_s`` a token."""
    chat = FakeChat([reply], token_delay_s=delay_s)
    backend = FakeBackend(make_engines=lambda: fake_engines(llm=chat), load_error=load_error)
    return VoicegrokApp(backend=backend, config_path=Path("/nonexistent/voicegrok.toml")), chat


async def until(pilot: Pilot[None], check: Callable[[], object], timeout_s: float = 10) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out waiting for the UI")


def text_of(app: VoicegrokApp, selector: str) -> str:
    return str(app.query_one(selector, Static).content)


def chat_text(app: VoicegrokApp) -> str:
    return app.query_one("#chat", ChatView).text


async def ready(pilot: Pilot[None]) -> VoicegrokApp:
    app = pilot.app
    assert isinstance(app, VoicegrokApp)
    await until(pilot, lambda: app.session is not None)
    return app


async def test_a_typed_question_streams_with_live_tokens_per_second() -> None:
    """The answer streams in as Markdown (the table is a table) while the tokens/s figure
    changes during the stream (every half second: a stream of two seconds); the turn's
    timings land in the table of recent turns."""
    app, _ = app_with(delay_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        seen: list[str] = []

        async def sample() -> None:
            while True:
                seen.append(text_of(app, "#speed"))
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        await pilot.click("#prompt")
        await pilot.press(*"Plan two days in New York", "enter")
        await until(pilot, lambda: app.query_one("#turns", DataTable).row_count == 1)
        sampler.cancel()
        streaming = {s for s in seen if "streaming" in s}
        assert len(streaming) >= 3, seen  # the figure moved while tokens arrived
        final = text_of(app, "#speed")
        assert "tokens/s" in final and "streaming" not in final
        assert "you: Plan two days in New York" in chat_text(app)
        chat = app.query_one("#chat", ChatView)
        await until(pilot, lambda: "Enjoy your trip!" in chat.rendered)
        assert "|" in chat.text and "|" not in chat.rendered, "the table is drawn, not its pipes"
        assert "**" not in chat.rendered, "Markdown emphasis is drawn, not its stars"
        assert "LLM first token" in text_of(app, "#stages")


async def test_escape_interrupts_the_answer() -> None:
    """Esc stops generation at once: the engine's stream is closed early and the chat says so."""
    long_answer = " ".join(f"word{i}" for i in range(300))
    app, chat = app_with(long_answer, delay_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press(*"talk a lot", "enter")
        await until(pilot, lambda: "streaming" in text_of(app, "#speed"))
        await pilot.press("escape")
        await until(pilot, lambda: "(interrupted)" in chat_text(app))
        await until(pilot, lambda: chat.stopped_early == 1)  # cancellation reached the engine
        assert app.session is not None
        # a typed chat without a speaker speaks nothing: nothing of the answer was heard,
        # so the history keeps the question only (README: "the history keeps only the part
        # of the answer you actually heard"; an empty answer is dropped)
        assert app.session.assistant.conversation.turns == [
            {"role": "user", "content": "talk a lot"}
        ]


async def test_no_speech_without_a_speaker_and_spoken_again_when_one_appears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no speaker nothing is synthesized; when a speaker is plugged in, the app finds
    it while idle, starts again with it (saying so), keeps the conversation, and speaks."""
    import voicegrok.ui.app as app_module

    monkeypatch.setattr(app_module, "DEVICE_WATCH_S", 0.2)
    chat = FakeChat(["Sure, here it is.", "Yes, again."], token_delay_s=0.005)
    tts = FakeTTS()
    backend = FakeBackend(make_engines=lambda: fake_engines(llm=chat, tts=tts))
    app = VoicegrokApp(backend=backend, config_path=Path("/nonexistent/voicegrok.toml"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press(*"first", "enter")
        await until(pilot, lambda: app.query_one("#turns", DataTable).row_count == 1)
        await pilot.pause(0.5)  # looked for devices meanwhile: still none
        assert backend.rescans >= 1 and backend.loads == 1
        assert tts.spoken == []  # nothing to play it on: nothing synthesized
        backend.speaker = True  # plugged in
        await until(pilot, lambda: "speaker found" in chat_text(app))
        await until(pilot, lambda: backend.loads == 2 and app.session is not None)
        assert app.probe.speaker == "fake speaker"
        await pilot.click("#prompt")
        await pilot.press(*"second", "enter")
        await until(pilot, lambda: app.query_one("#turns", DataTable).row_count == 2)
        assert tts.spoken  # spoken again
        assert app.session is not None
        assert [m["content"] for m in app.session.assistant.conversation.turns] == [
            "first",
            "Sure, here it is.",
            "second",
            "Yes, again.",
        ]


async def test_past_conversations_are_listed_opened_and_go_on(tmp_path: Path) -> None:
    """F5 lists the kept conversations; opening one shows its turns, puts them back in the
    LLM's context, and the next turn is kept with them."""
    from voicegrok.history import History

    history = History(tmp_path / "h.sqlite3")
    old = history.record("ui", {})
    c = Conversation(journal=old)
    c.add_user("Plan a day in Queens.", 1)
    c.add_assistant("Start at **Flushing**.", 1)
    old.flush()
    kept = old.conversation
    recorder = history.record("ui", {})
    chat = FakeChat(["Then Astoria."], token_delay_s=0.001)
    backend = FakeBackend(make_engines=lambda: fake_engines(llm=chat))
    app = VoicegrokApp(
        backend=backend,
        config_path=Path("/nonexistent/voicegrok.toml"),
        conversation=Conversation(journal=recorder),
        recorder=recorder,
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("f5")
            await until(pilot, lambda: isinstance(app.screen, PastScreen))
            await pilot.press("enter")
            await until(pilot, lambda: "Plan a day in Queens." in chat_text(app))
            assert "Start at Flushing." in app.query_one("#chat", ChatView).rendered
            await pilot.click("#prompt")
            await pilot.press(*"And after?", "enter")
            await until(pilot, lambda: app.query_one("#turns", DataTable).row_count == 1)
            assert chat.prompts[-1][1:] == [
                {"role": "user", "content": "Plan a day in Queens."},
                {"role": "assistant", "content": "Start at **Flushing**."},
                {"role": "user", "content": "And after?"},
            ]
        recorder.flush()
        assert [t.question for t in history.turns(kept or 0)] == [
            "Plan a day in Queens.",
            "And after?",
        ]
    finally:
        history.close()


async def test_escape_keeps_in_the_history_only_the_clauses_heard() -> None:
    """With a speaker, Esc during the second clause: the history keeps the first clause,
    the one played to the end, and nothing of the clause cut off or of the unspoken rest."""
    rest = " ".join(f"word{i}" for i in range(40))  # no comma or full stop: one long clause
    chat = FakeChat([f"Sure, {rest} end. And more after that."], token_delay_s=0.005)
    tts = FakeTTS()  # 10 ms of audio a character: "Sure," lasts 50 ms, the next clause 3 s
    backend = FakeBackend(make_engines=lambda: fake_engines(llm=chat, tts=tts), speaker=True)
    app = VoicegrokApp(backend=backend, config_path=Path("/nonexistent/voicegrok.toml"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        session = app.session
        assert session is not None
        await pilot.click("#prompt")
        await pilot.press(*"talk a lot", "enter")
        second_s = 0.3  # well into the second clause, far from its end
        rate = tts.sample_rate_hz
        await until(pilot, lambda: session.speaker.played_bytes >= 2 * rate * second_s)
        await pilot.press("escape")
        await until(pilot, lambda: "(interrupted)" in chat_text(app))
        assert tts.spoken[:2] == ["Sure,", f"{rest} end."]
        assert session.assistant.conversation.turns == [
            {"role": "user", "content": "talk a lot"},
            {"role": "assistant", "content": "Sure,"},
        ]


async def test_new_conversation_forgets_the_history() -> None:
    app, _ = app_with("Sure.")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press(*"hello", "enter")
        await until(pilot, lambda: app.query_one("#turns", DataTable).row_count == 1)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: not chat_text(app))
        assert app.session is not None
        assert app.session.assistant.conversation.turns == []


async def test_a_model_that_cannot_load_is_shown_in_the_ui() -> None:
    """A broken model is one line in a banner and the conversation, not a traceback."""
    app, _ = app_with(load_error="cut.gguf: cannot load the GGUF model; pass --llm-model a file")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.state == "error")
        assert "cut.gguf" in text_of(app, "#banner")
        assert app.query_one("#banner").display
        assert "error: cut.gguf" in chat_text(app)


async def test_no_devices_banner_and_typed_chat() -> None:
    app, _ = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        banner = text_of(app, "#banner")
        assert "no microphone" in banner and "typed chat" in banner
        assert app.state == "typing"
        await pilot.press("f3")  # mute without a microphone: a message, no crash
        assert app.state == "typing"


async def test_a_spoken_question_appears_as_a_transcript_and_is_answered() -> None:
    stt = FakeSTT(["What is the capital of France?"])
    backend = FakeBackend(
        make_engines=lambda: fake_engines(stt=stt, llm=FakeChat(["Paris."])),
        mic_audio=np.concatenate([silence(0.5), tone(1.0)]),
        speaker=True,
    )
    app = VoicegrokApp(backend=backend)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert not app.query_one("#banner").display
        await until(pilot, lambda: "you: What is the capital of France?" in chat_text(app))
        await until(pilot, lambda: app.query_one("#turns", DataTable).row_count == 1)
        assert "speech-to-text" in text_of(app, "#stages")


async def test_push_to_talk_records_and_answers_without_waiting_for_silence() -> None:
    """F4 starts recording (the end-of-turn detector hears nothing), F4 again sends it."""
    stt = FakeSTT(["Tell me a joke."])
    backend = FakeBackend(
        make_engines=lambda: fake_engines(stt=stt, llm=FakeChat(["Knock knock."])),
        mic_audio=np.zeros(16000 * 30, np.float32),  # PTT needs no voice to record
    )
    app = VoicegrokApp(backend=backend)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f4")
        await until(pilot, lambda: app.state == "recording")
        await pilot.pause(0.6)
        await pilot.press("f4")
        await until(pilot, lambda: "you: Tell me a joke." in chat_text(app))
        assert stt.heard and stt.heard[0] >= 0.4 * 16000, "the recording was transcribed"


@pytest.mark.parametrize("muted", [True, False])
async def test_mute_makes_the_microphone_deaf(muted: bool) -> None:
    """Muted (F3), a spoken question goes through the microphone (its level shows) but
    starts no turn; the same audio unmuted is heard and answered (the control: a deaf
    pipeline would pass the muted case alone)."""
    stt = FakeSTT(["can you hear me"])
    backend = FakeBackend(
        make_engines=lambda: fake_engines(stt=stt),
        # 3 s of quiet first: on a slow host the app took over 1.5 s to be ready
        mic_audio=np.concatenate([silence(3.0), tone(1.0)]),
    )
    app = VoicegrokApp(backend=backend)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        session = app.session
        assert session is not None
        if muted:
            await pilot.press("f3")
            assert app.state == "muted"
        assert session.level < 0.01, "the question must come after the mute"
        await until(pilot, lambda: session.level > 0.1)  # the question is spoken...
        await until(pilot, lambda: session.level < 0.01)  # ... and over
        await pilot.pause(1.0)  # twice the end-of-turn silence follows it
        # a typed question goes into the pipeline behind all that audio: by the time it is
        # shown, a turn the spoken question started has been shown before it
        await pilot.click("#prompt")
        await pilot.press(*"are you there", "enter")
        await until(pilot, lambda: "you: are you there" in chat_text(app))
        shown = chat_text(app)
        if muted:
            assert "you: can you hear me" not in shown, shown
            assert stt.started == 0
        else:
            assert 0 <= shown.index("you: can you hear me") < shown.index("you: are you"), shown


async def test_settings_are_saved_and_used_on_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    backend = FakeBackend()
    app = VoicegrokApp(backend=backend, config_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.click("#prompt")
        await pilot.press(*"remember me", "enter")
        await until(pilot, lambda: app.query_one("#turns", DataTable).row_count == 1)
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.query_one("#end_of_turn", Select).value = "patient"
        app.screen.query_one("#input_device", Select).value = "Test Microphone"
        await pilot.click("#save")
        await until(pilot, lambda: path.exists())
        await until(pilot, lambda: backend.loads == 2)  # restarted with the new settings
        await ready(pilot)
        assert app.session is not None
        said = [m["content"] for m in app.session.assistant.conversation.turns]
        assert said[0] == "remember me", "the conversation goes on after a restart"
    saved = load_user_config(path)
    assert saved == UserConfig(input_device="Test Microphone", end_of_turn="patient")
    assert saved.end_silence_ms == 800
    # the next start shows the saved values
    app2 = VoicegrokApp(config=saved, backend=FakeBackend(), config_path=path)
    async with app2.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app2.screen, SettingsScreen))
        assert app2.screen.query_one("#end_of_turn", Select).value == "patient"
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app2.screen, SettingsScreen))


async def test_help_lists_the_keys() -> None:
    app, _ = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.query_one(Markdown).source
        for key in ("Esc", "F2", "F3", "F4", "Ctrl+N"):
            assert key in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_a_long_conversation_stays_cheap_to_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """After 300 turns, a streamed answer renders only the Markdown it completes (each unit
    once, plus the unit being written at each flush), and draws only the lines on screen."""
    import voicegrok.ui.chat as chat_module

    rendered: list[str] = []
    real = chat_module.render_unit

    def counting(console: object, unit: str, width: int) -> object:
        rendered.append(unit)
        return real(console, unit, width)  # type: ignore[arg-type]

    app, _ = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        for turn in range(1, 301):
            frames = answering_with_a_table()[:-2]  # without the partial transcript after it
            for frame in frames:
                app.show(replace(frame, turn_id=turn))  # type: ignore[type-var]
        await until(pilot, lambda: app.settled)
        chat = app.query_one("#chat", ChatView)
        assert chat.virtual_size.height > 300 * 8
        monkeypatch.setattr(chat_module, "render_unit", counting)
        lines_drawn: list[int] = []
        real_line = chat.render_line
        monkeypatch.setattr(chat, "render_line", lambda y: lines_drawn.append(y) or real_line(y))
        for frame in answering_with_a_table()[:-2]:
            app.show(replace(frame, turn_id=301))  # type: ignore[type-var]
            await pilot.pause(0.01)
        await until(pilot, lambda: app.settled)
        await pilot.pause(0.2)
        units = [u for u in rendered if u.strip()]
        streamed = "".join(f.text for f in answering_with_a_table() if isinstance(f, LLMToken))
        assert all(u in streamed or u in TABLE_ANSWER for u in units)
        assert len(units) < 60, units  # this answer's units and its pending tails, not 300 turns'
        assert "Enjoy your trip!" in chat.rendered.splitlines()[-1]
        assert lines_drawn and max(lines_drawn) < SIZE[1]  # the screen's lines, no others


async def test_a_long_answer_is_followed_in_steps_and_draws_only_its_new_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Streaming an answer three screens long: its newest line is always on screen, the
    view moves up a third of a screen at a time (not a line at a time: each move draws the
    whole view again), and between moves an update draws only the lines that changed (a
    few at each update, against the whole view before)."""
    reply = "\n".join(f"Step {n}." for n in range(1, 91))  # 180 tokens
    app, _ = app_with(reply, delay_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        chat = app.query_one("#chat", ChatView)
        drawn: list[int] = []
        real_line = chat.render_line
        monkeypatch.setattr(chat, "render_line", lambda y: drawn.append(y) or real_line(y))
        await pilot.press(*"go", "enter")
        tops: list[int] = []
        updates: list[int] = []
        for _ in range(500):  # 10 s at most
            if chat.text.endswith("Step 90.") and app.settled:
                break
            before = len(drawn)
            await pilot.pause(0.02)
            view = chat.scrollable_content_region.height
            shown = [i for i, line in enumerate(chat._lines) if line.text.strip()]
            top = round(chat.scroll_y)
            assert top <= shown[-1] < top + view, "the newest line is on screen"
            if not tops or tops[-1] != top:
                tops.append(top)
            elif len(drawn) > before:
                updates.append(len(drawn) - before)
        view = chat.scrollable_content_region.height
        assert 90 > view * 2  # three screens or so
        assert 3 <= len(tops) <= 90 // (view // 3) + 2, tops
        assert updates and sorted(updates)[len(updates) // 2] <= view // 4, (updates, tops)


# ---------------------------------------------------------------- snapshots

Before = Callable[[Pilot[None]], Awaitable[None]]


def scripted(*frames_of: Callable[[], list[object]]) -> Before:
    """Wait for the (fake) session, then show fixed frames: the picture does not depend on
    how fast this machine is."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = await ready(pilot)
        app.query_one(Input).cursor_blink = False  # a picture must not depend on the blink
        for make in frames_of:
            for frame in make():
                app.show(frame)  # type: ignore[arg-type]
        await until(pilot, lambda: app.settled)
        await pilot.pause(0.3)

    return run_before


def answering_with_a_table() -> list[object]:
    t0 = 100.0
    frames: list[object] = [
        TurnStarted(turn_id=1, speech_end_s=t0, source="speech"),
        UserText(turn_id=1, text="Can you put this itinerary in a table?", at_s=t0 + 0.1),
    ]
    tokens = TABLE_ANSWER.replace("\n", " \n").split(" ")
    for i, tok in enumerate(tokens):
        frames.append(LLMToken(turn_id=1, text=tok + " ", index=i, at_s=t0 + 0.2 + i * 0.01))
    frames += [
        LLMDone(
            turn_id=1,
            text=TABLE_ANSWER,
            n_tokens=len(tokens),
            first_token_s=t0 + 0.2,
            last_token_s=t0 + 0.2 + (len(tokens) - 1) * 0.01,
        ),
        TurnMetrics(
            turn_id=1,
            source="speech",
            stt_ms=95.0,
            llm_first_token_ms=60.0,
            tts_first_audio_ms=140.0,
            first_audio_ms=310.0,
            total_ms=900.0,
            tokens_per_s=100.0,
            n_tokens=len(tokens),
            clauses=4,
            audio_s=5.0,
        ),
        SpeechStarted(turn_id=2, audio_start_s=12.0),
        UserText(turn_id=2, text="Now add a column", final=False),
    ]
    return frames


@pytest.mark.parametrize(
    ("name", "before", "press"),
    [
        ("idle", scripted(), []),
        ("answering_with_a_table", scripted(answering_with_a_table), []),
        ("help", scripted(), ["f1"]),
        ("settings", scripted(), ["f2"]),
    ],
)
def test_snapshots(
    snap_compare: Callable[..., bool], name: str, before: Before, press: list[str]
) -> None:
    """The main states look right (no-device banner included: the fake has no devices)."""
    app = VoicegrokApp(backend=FakeBackend(), config_path=Path("/nonexistent/voicegrok.toml"))
    assert snap_compare(app, terminal_size=SIZE, run_before=before, press=press)


async def test_the_info_panel_shows_the_llm_auto_picked_and_why() -> None:
    from voicegrok.choice import Choice

    def engines() -> Engines:
        e = fake_engines()
        e.llm_choice = Choice(
            "qwen2.5-coder-1.5b",
            Path("/models/qwen.gguf"),
            "best quality here (quality 99/100, first clause 1257 ms, 13 tokens/s)",
        )
        return e

    app = VoicegrokApp(
        backend=FakeBackend(make_engines=engines), config_path=Path("/nonexistent/vg.toml")
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        info = text_of(app, "#info")
        assert "LLM    qwen2.5-coder-1.5b" in info
        assert "auto: best quality here (quality 99/100" in info
