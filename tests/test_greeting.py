"""The greeting said when a live conversation starts with an echo canceller still to learn
the room, and when the person is heard over the speaker (logic: a fake assistant, the
virtual speaker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import numpy.typing as npt
import pytest

from voicegrok.adapters.devices import Devices
from voicegrok.adapters.virtual import VirtualSpeaker
from voicegrok.cli import build_parser
from voicegrok.errors import UsageError
from voicegrok.frames import Frame, Greeting
from voicegrok.live import GREETING_ECHO_S, LiveSession
from voicegrok.userconfig import DEFAULT_GREETING, UserConfig, load_user_config

RATE = 16_000
VOICE_RATE = 8_000
SAID_S = 0.3


class _History:
    def reset(self) -> None:
        pass


class SpeakingAssistant:
    """Hears the microphone, answers nothing, and says a text as ``SAID_S`` of PCM."""

    def __init__(self) -> None:
        self.conversation = _History()
        self.heard_chunks = 0
        self.said: list[str] = []
        self.heard: list[bool] = []
        """For each chunk heard, whether it had sound in it."""

    async def hear(self, samples: npt.NDArray[np.float32], *_: object, **__: object) -> None:
        self.heard_chunks += 1
        self.heard.append(bool(np.any(samples)))

    async def speak_alert(self, text: str) -> AsyncIterator[bytes]:
        self.said.append(text)
        yield b"\1\0" * int(VOICE_RATE * SAID_S)

    async def push_text(self, *_args: object, **_kwargs: object) -> int:
        return 1

    push_audio = push_text

    async def end_turn(self, *_args: object) -> None:
        pass

    edit_history = end_turn

    async def frames(self) -> AsyncIterator[Frame]:
        await asyncio.Event().wait()  # nothing to answer
        yield Greeting(turn_id=0, text="")  # (never reached)


async def _room(seconds: float) -> AsyncIterator[npt.NDArray[np.float32]]:
    """A microphone that hears a quiet sound all along (the greeting's echo, say)."""
    for _ in range(int(seconds / 0.02)):
        await asyncio.sleep(0.02)
        yield np.full(RATE // 50, 0.01, dtype=np.float32)


async def _session(
    greeting: str, *, converged: bool
) -> tuple[SpeakingAssistant, VirtualSpeaker, list[Frame], list[dict[str, float]]]:
    """Run a session over 1.5 s of a quiet room; what was shown, and for each call of ``ready``
    where playback and listening stood."""
    assistant, speaker = SpeakingAssistant(), VirtualSpeaker(VOICE_RATE)
    shown: list[Frame] = []
    session = LiveSession(
        assistant,
        speaker,
        view=shown.append,
        hears_over_speaker=lambda: converged,
        greeting=greeting,
        after_greeting=lambda: relearnt.append(speaker.buffered_s),
    )
    relearnt: list[float] = []
    readies: list[dict[str, float]] = []
    answering: list[bool] = []

    def ready() -> None:
        readies.append(
            {
                "played_s": speaker.played_bytes / 2 / VOICE_RATE,
                "buffered_s": speaker.buffered_s,
                "heard_chunks": assistant.heard_chunks,
                "relearnt": len(relearnt),
            }
        )

    async def watch() -> None:
        while True:
            answering.append(session.answering)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    await session.run(_room(1.5), RATE, ready=ready)
    watcher.cancel()
    if assistant.said:
        assert True in answering and not answering[-1], "speaking while the greeting plays"
    return assistant, speaker, shown, readies


async def test_a_canceller_still_to_learn_the_room_hears_the_greeting_before_anyone_speaks() -> (
    None
):
    assistant, speaker, shown, readies = await _session("Hi there.", converged=False)
    assert assistant.said == ["Hi there."]
    assert [f.text for f in shown if isinstance(f, Greeting)] == ["Hi there."]
    # it listens once the greeting has been played out, not before
    assert len(readies) == 1 and readies[0]["buffered_s"] == 0
    assert readies[0]["relearnt"] == 1  # the canceller told, once it had been played
    assert readies[0]["played_s"] == pytest.approx(SAID_S)
    # the microphone went on meanwhile, heard as silence (the canceller, upstream, has
    # it as it was), and as it is once it listens
    before = int(readies[0]["heard_chunks"])
    assert before >= (SAID_S + GREETING_ECHO_S) / 0.02 * 0.5
    assert not any(assistant.heard[:before]) and all(assistant.heard[before + 1 :])
    assert len(speaker.recording) == int(VOICE_RATE * SAID_S) * 2


@pytest.mark.parametrize(
    ("greeting", "converged"),
    [("Hi there.", True), ("", False)],
    ids=["the canceller hears the person already", "no greeting set"],
)
async def test_no_greeting_when_it_is_not_needed_or_not_wanted(
    greeting: str, converged: bool
) -> None:
    assistant, speaker, shown, readies = await _session(greeting, converged=converged)
    assert assistant.said == [] and speaker.played_bytes == 0
    assert not [f for f in shown if isinstance(f, Greeting)]
    assert len(readies) == 1 and readies[0]["heard_chunks"] <= 2  # at once
    assert readies[0]["relearnt"] == 0


def test_the_greeting_is_a_setting_with_a_default(tmp_path: Path) -> None:
    assert UserConfig().greeting == DEFAULT_GREETING
    path = tmp_path / "c.toml"
    path.write_text('greeting = ""\n')
    assert load_user_config(path).greeting == ""
    path.write_text(f'greeting = "{"la " * 200}"\n')
    with pytest.raises(UsageError, match="greeting is 600 characters, at most 300"):
        load_user_config(path)


@pytest.mark.parametrize(
    ("converged", "no_echo", "coupling_db", "hears"),
    [
        (False, False, -12.0, False),  # still learning: muted while the speaker plays
        (True, False, -12.0, True),  # a laptop's speaker
        (True, False, -6.0, True),
        (True, False, 0.0, False),  # as loud in the microphone as the person
        (True, True, 0.0, True),  # a headset: not heard at all
    ],
)
def test_the_person_is_heard_over_a_speaker_that_is_not_as_loud_as_they_are(
    converged: bool, no_echo: bool, coupling_db: float, hears: bool
) -> None:
    canceller = SimpleNamespace(
        converged=converged, no_echo=no_echo, coupling=10 ** (coupling_db / 10)
    )
    devices = Devices(canceller=canceller)  # type: ignore[arg-type]
    assert devices.hears_over_speaker() is hears
    assert Devices().hears_over_speaker()  # no canceller: a headset


def test_the_command_line_sets_the_greeting_for_one_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    assert parser.parse_args(["talk", "--greeting", ""]).greeting == ""
    assert parser.parse_args(["ui", "--greeting", " Hello. "]).greeting == "Hello."
    assert parser.parse_args(["talk"]).greeting is None  # the saved setting, or the default
    with pytest.raises(SystemExit):
        parser.parse_args(["talk", "--greeting", "la " * 200])
    assert "at most 300" in capsys.readouterr().err
    assert UserConfig().with_flags(greeting="").greeting == ""
