"""Timers in a live conversation, through real PortAudio devices (the PulseAudio rig of
test_live_devices): set by voice, heard out loud at their second."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from voicegrok.bench.rig import Recording, VirtualAudio

from .test_live_devices import (  # the rig's fixture and helpers
    _lines,
    pytestmark,
    ready,
    start_talk,
    stop,
    virtual_audio,
)

__all__ = ["pytestmark", "virtual_audio"]


def sounds(rec: Recording, *, gap_s: float = 0.5) -> list[tuple[float, float]]:
    """The stretches of sound in the recording (start, end in seconds), split at silences
    longer than ``gap_s``."""
    audio = rec.audio()
    window = rec.RATE // 50
    n = len(audio) // window
    loud = np.sqrt(np.mean(audio[: n * window].reshape(n, window) ** 2, axis=1)) > 0.005
    spans: list[tuple[float, float]] = []
    for i in np.flatnonzero(loud):
        t = i * window / rec.RATE
        if spans and t - spans[-1][1] <= gap_s:
            spans[-1] = (spans[-1][0], t + window / rec.RATE)
        else:
            spans.append((t, t + window / rec.RATE))
    return spans


def spoken(virtual_audio: VirtualAudio, tmp_path: Path, text: str) -> Path:
    """``text`` said by the voice, in a WAV file."""
    path = tmp_path / "request.wav"
    command = ["say", text, "--out", str(path), "-q"]
    subprocess.run([sys.executable, "-m", "voicegrok", *command], env=virtual_audio.env, check=True)
    return path


def until_the_alert_is_heard(virtual_audio: VirtualAudio, tmp_path: Path, then_s: float) -> None:
    """Feed the microphone silence until a timer's alert is printed, then ``then_s`` more
    (while it is played)."""
    done = threading.Event()
    feeder = threading.Thread(target=virtual_audio.speak, args=(60.0,), kwargs={"stop": done})
    feeder.start()
    try:
        deadline = time.monotonic() + 60
        while not any("Time's up" in line for line in _lines(tmp_path)):
            assert time.monotonic() < deadline, _lines(tmp_path)
            time.sleep(0.2)
        time.sleep(then_s)
    finally:
        done.set()
        feeder.join()


def transcribe(rec: Recording, t0: float, t1: float, tmp_path: Path, env: dict[str, str]) -> str:
    import soundfile

    path = tmp_path / f"heard_{t0:.1f}.wav"
    soundfile.write(str(path), rec.audio(t0, t1), rec.RATE)
    return subprocess.run(
        [sys.executable, "-m", "voicegrok", "transcribe", str(path), "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout


def test_a_timer_set_by_voice_is_heard_at_its_second(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """ "Set a timer for six seconds", spoken: the assistant says it is set, and six
    seconds after that its alert comes out of the speaker."""
    question = spoken(virtual_audio, tmp_path, "Set a timer for six seconds.")
    talk = start_talk(virtual_audio, tmp_path)
    ready(talk, virtual_audio)
    rec = virtual_audio.record()
    virtual_audio.speak(0.5, str(question))
    until_the_alert_is_heard(virtual_audio, tmp_path, then_s=3.0)
    out, err = stop(talk)
    rec.stop()
    assert "(tool set_timer " in out and "Traceback" not in err, out + err
    spans = [s for s in sounds(rec) if s[1] - s[0] > 0.3]
    assert len(spans) == 2, spans  # "OK, 6 seconds, starting now." and the alert
    (set_at, set_end), (alert_at, alert_end) = spans
    # the confirmation is said right after the timer starts (a fixed answer, no LLM), and
    # both sentences pass the same output path: their onsets are 6 s apart, give or take
    # the synthesis of each one's first clause
    assert 5.6 <= alert_at - set_at <= 6.4, spans
    heard_set = transcribe(rec, set_at - 0.1, set_end + 0.1, tmp_path, virtual_audio.env)
    heard_alert = transcribe(rec, alert_at - 0.1, alert_end + 0.1, tmp_path, virtual_audio.env)
    assert "6 seconds" in heard_set or "six seconds" in heard_set.lower(), heard_set
    assert "timer" in heard_alert.lower() and "done" in heard_alert.lower(), heard_alert


def test_a_timer_rings_over_an_answer_being_played(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """A timer that comes due while a long answer is playing is said at its second: the
    answer stops for it."""
    from .conftest import DEMO

    question = spoken(virtual_audio, tmp_path, "Set a timer for sixteen seconds.")
    talk = start_talk(virtual_audio, tmp_path)
    ready(talk, virtual_audio)
    rec = virtual_audio.record()
    virtual_audio.speak(0.5, str(question), 1.5)
    set_at = sounds(rec)[0][0]  # the confirmation (nothing else was played yet)
    # the itinerary question (9 s) is answered (from about 13 s) at length: still playing at 16 s
    virtual_audio.speak(str(DEMO / "turn1.wav"), 0.6)
    until_the_alert_is_heard(virtual_audio, tmp_path, then_s=4.0)
    out, err = stop(talk)
    rec.stop()
    assert "(tool set_timer " in out and "Traceback" not in err, out + err
    assert out.index("itinerary") < out.index("Time's up"), out  # the answer was under way
    due = set_at + 16.0
    assert rec.loudness(due - 1.5, due - 0.3) > 0.01  # the answer was playing ...
    heard = transcribe(rec, due - 0.2, due + 3.5, tmp_path, virtual_audio.env)
    assert "timer" in heard.lower() and "done" in heard.lower(), heard  # ... then the alert
    before = transcribe(rec, due - 2.5, due - 0.2, tmp_path, virtual_audio.env)
    assert "timer" not in before.lower(), before
