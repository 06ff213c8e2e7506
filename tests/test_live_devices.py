"""The live loop through real PortAudio devices: a PulseAudio daemon with a pipe source as
the microphone and a null sink as the speaker (its monitor records what voicegrok said)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voicegrok import models
from voicegrok.audio import load_audio
from voicegrok.bench import rig
from voicegrok.bench.echo import after_question, turn_lines
from voicegrok.bench.rig import VirtualAudio
from voicegrok.userconfig import DEFAULT_GREETING

from .conftest import DEMO, words

pytestmark = pytest.mark.skipif(
    shutil.which("pulseaudio") is None and not os.environ.get("CI"),
    reason="needs PulseAudio (installed by .ci/run: apt-get install pulseaudio pulseaudio-utils)",
)


@pytest.fixture
def virtual_audio(tmp_path: Path) -> Iterator[VirtualAudio]:
    """A private PulseAudio daemon (:func:`voicegrok.bench.rig.virtual_audio`); the
    processes a test adds to ``procs`` are killed when it ends."""
    env = dict(os.environ, VOICEGROK_MODELS_DIR=str(tmp_path / "models"))
    with rig.virtual_audio(tmp_path / "pulse", env) as audio:
        yield audio


def start_talk(va: VirtualAudio, tmp_path: Path, *command: str) -> subprocess.Popen[str]:
    """``voicegrok talk`` (or ``command``), with per-turn metrics in m.jsonl and its stdout
    going to talk.out, which the test can read while it runs."""
    args = [*(command or ["talk"]), "--metrics", str(tmp_path / "m.jsonl")]
    with (tmp_path / "talk.out").open("w") as out:  # the child keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "voicegrok", *args],
            env=va.env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    va.procs.append(proc)
    return proc


def _lines(tmp_path: Path) -> list[str]:
    path = tmp_path / "talk.out"
    return path.read_text().splitlines() if path.exists() else []


def answering(tmp_path: Path, question_end: str) -> bool:
    """The answer to the question ending with ``question_end`` has started to stream."""
    lines = _lines(tmp_path)
    return any(
        a.startswith("you: ") and question_end in a and b.startswith("voicegrok: ")
        for a, b in itertools.pairwise(lines)
    )


def after_the_question(out: str) -> str:
    """What ``talk`` printed after the line of the itinerary question."""
    rest = after_question(out, "itinerary for me")
    assert rest is not None, f"the itinerary question is not in the output:\n{out}"
    return rest


def wait_for_metrics(path: Path, n: int, timeout_s: float = 60) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line]
            if len(rows) >= n:
                return rows
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} turns in {timeout_s} s")


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 130), err
    out_file = Path(proc.args[-1]).parent / "talk.out"  # type: ignore[index]
    return out_file.read_text(), err


@contextlib.contextmanager
def fed(va: VirtualAudio | None) -> Iterator[None]:
    """The microphone fed with silence meanwhile, as a real one delivers it: a pipe source
    nothing is written to stops delivering, and voicegrok takes that for a lost microphone
    (nothing to do while a loopback writes it, or with no ``va``)."""
    if va is None or va.mix is not None:
        yield
        return
    mic = va.microphone()
    try:
        yield
    finally:
        mic.close()


def ready(proc: subprocess.Popen[str], va: VirtualAudio | None = None) -> None:
    """Wait for the 'listening' line (models loaded, microphone open, greeting said), the
    microphone of ``va`` fed with silence meanwhile (see :func:`fed`)."""
    assert proc.stderr is not None
    with fed(va):
        for line in proc.stderr:
            if "is listening" in line:
                return
    raise AssertionError("voicegrok talk did not start")


def test_a_spoken_question_is_answered_out_loud(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """Speech into the virtual microphone; the answer voicegrok prints comes out of the
    speaker, after the greeting it says when it starts (the echo canceller learns the room
    from it, so the first answer is let out as soon as any later one would be)."""
    rec = virtual_audio.record()
    talk = start_talk(virtual_audio, tmp_path)
    ready(talk, virtual_audio)
    greeted_s = rec.now_s()
    assert rec.loudness(0, greeted_s) > 0.01, "the greeting was heard before it listened"
    virtual_audio.speak(0.5, str(DEMO / "turn3.wav"), 0.5)
    done = threading.Event()
    feeder = threading.Thread(target=virtual_audio.speak, args=(30.0,), kwargs={"stop": done})
    feeder.start()  # keep the microphone fed with silence while the answer plays
    try:
        rows = wait_for_metrics(tmp_path / "m.jsonl", 1)
        time.sleep(1.0)  # a turn's row is written once its answer has been played
    finally:
        done.set()
        feeder.join()
    out, err = stop(talk)
    rec.stop()
    assert out.startswith(f"voicegrok: {DEFAULT_GREETING}\n"), out
    assert "you: Please add a column with the approximate cost of each event." in out, err
    answer = out.split("\nyou: ", 1)[1].split("voicegrok: ", 1)[1].split("\n[", 1)[0]
    assert rows[0]["first_audio_device_ms"] is not None and rows[0]["interrupted"] is False, rows
    # not held back to the end-of-turn silence (480 ms) as while the canceller was learning
    assert float(rows[0]["released_ms"]) < 480, rows  # type: ignore[arg-type]
    heard = subprocess.run(
        [
            sys.executable,
            "-m",
            "voicegrok",
            "transcribe",
            str(rec.save_wav(tmp_path / "out.wav")),
            "-q",
        ],
        capture_output=True,
        text=True,
        env=virtual_audio.env,
        check=True,
    ).stdout
    said, expected = set(words(heard)), set(words(f"{DEFAULT_GREETING} {answer}"))
    assert said and len(said & expected) / len(said) >= 0.5, (heard, answer)
    assert "Traceback" not in err


def test_speaking_over_the_answer_stops_it_and_starts_a_new_turn(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """Barge-in: playback falls silent while the person talks; their new question is answered."""
    talk = start_talk(virtual_audio, tmp_path)
    ready(talk, virtual_audio)
    rec = virtual_audio.record()
    # the itinerary question gets a long answer; 2.5 s into its playback (past the echo
    # canceller's first second, which is half duplex), ask something else
    virtual_audio.speak(0.5, str(DEMO / "turn1.wav"), 0.6)
    # (a pause inside the question may start an early answer that is then withdrawn: wait
    # for the answer to the whole question, then until it has been heard for 2.5 s)
    deadline = time.monotonic() + 60
    heard_from = None
    while heard_from is None or rec.now_s() < heard_from + 2.5:
        assert time.monotonic() < deadline, "the answer was never heard"
        virtual_audio.speak(0.1)
        if heard_from is None and answering(tmp_path, "itinerary for me"):
            if rec.loudness(rec.now_s() - 0.3, rec.now_s()) > 0.01:
                heard_from = rec.now_s() - 0.3
    second = load_audio(DEMO / "turn4.wav")
    onset = int(np.argmax(np.abs(second) > 0.02)) / 16000  # the recording starts with silence
    barge_at = rec.now_s() + onset  # where, in the recording, the person starts talking
    virtual_audio.speak(str(DEMO / "turn4.wav"), 1.0)
    done = threading.Event()
    feeder = threading.Thread(target=virtual_audio.speak, args=(120.0,), kwargs={"stop": done})
    feeder.start()
    try:
        # (a turn's row is written once its answer has been played: long answers take a while)
        rows = wait_for_metrics(tmp_path / "m.jsonl", 2, timeout_s=90)
    finally:
        done.set()
        feeder.join()
    out, err = stop(talk)
    rec.stop()
    assert "(interrupted)" in out, out + err
    assert [r["interrupted"] for r in rows[:2]] == [True, False], rows
    # while both talk, the echo canceller damps the first syllables ("And now"); the rest of
    # the new question must come through (its words stop the answer: "(interrupted)" may
    # be printed just after them)
    new_question = after_the_question(out)
    assert "you: " in new_question and "Atlanta" in new_question.split("you: ", 1)[1], out
    # the answer was playing just before the person spoke ...
    assert rec.loudness(barge_at - 1.0, barge_at) > 0.01
    # ... and was silent while they kept speaking (from 0.4 s after they started to 0.5 s
    # before their words end)
    assert rec.loudness(barge_at + 0.4, barge_at - onset + len(second) / 16000 - 0.5) < 0.003


def test_its_own_voice_from_the_speaker_does_not_interrupt_it(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """Loudspeaker use: everything voicegrok plays is fed back into the microphone at the
    level it was played. The echo canceller removes it: the answer is not interrupted and
    no turn is started by its own words."""
    # the microphone hears the speaker from the start, as a loudspeaker in a room: its
    # greeting, and answers begun at pauses inside the question too
    loop = virtual_audio.loopback()
    try:
        talk = start_talk(virtual_audio, tmp_path)
        ready(talk, virtual_audio)
        virtual_audio.speak(0.5, str(DEMO / "turn1.wav"), 0.6)
        # (written after playback: the longest answer, 400 tokens, is 75-80 s of speech)
        wait_for_metrics(tmp_path / "m.jsonl", 1, timeout_s=150)
        time.sleep(2.0)
    finally:
        loop.terminate()
        loop.wait(10)
    out, _err = stop(talk)
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["interrupted"] is False, (rows, out)
    assert float(rows[0]["audio_s"]) > 3, "a long spoken answer went through the loop"  # type: ignore[arg-type]
    assert "(interrupted)" not in out, out
    # its own words start no turn: nothing the person "said" after the question's answer
    # (early answers withdrawn at pauses inside the question come before it)
    after_answer = after_the_question(out)
    assert "you: " not in after_answer and "(listening" not in after_answer, out


def test_connect_talks_to_a_server_through_the_local_devices(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """voicegrok connect: the local microphone and speaker, the models behind voicegrok
    serve; a spoken question is answered out loud here."""
    server = subprocess.Popen(
        [sys.executable, "-m", "voicegrok", "serve", "--port", "0", "-q"],
        env=virtual_audio.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    virtual_audio.procs.append(server)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        assert "serving on" in line, line
        address = line.split("and ", 1)[1].split()[0]  # ws://127.0.0.1:PORT/v1/realtime
        rec = virtual_audio.record()
        client = start_talk(virtual_audio, tmp_path, "connect", address, "--console")
        ready(client)
        virtual_audio.speak(0.5, str(DEMO / "turn3.wav"), 0.5)
        done = threading.Event()
        feeder = threading.Thread(target=virtual_audio.speak, args=(30.0,), kwargs={"stop": done})
        feeder.start()
        try:
            rows = wait_for_metrics(tmp_path / "m.jsonl", 1)
        finally:
            done.set()
            feeder.join()
        out_text, err = stop(client)
        rec.stop()
        assert "you: Please add a column with the approximate cost" in out_text, out_text + err
        assert rows[0]["interrupted"] is False and rows[0]["first_audio_device_ms"] is not None
        # timed here from the end of the speech sent, not from the server's decision: the
        # first sound comes after the transcript (which the server timed from the same end)
        assert rows[0]["first_audio_device_ms"] > rows[0]["stt_ms"], rows[0]
        assert rec.loudness(0, rec.now_s()) > 0.005  # the answer came out of the speaker
        assert "Traceback" not in err
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


@pytest.mark.parametrize("gain", [0.25, 0.5], ids=["-12dB", "-6dB"])
def test_open_speakers_answer_only_what_the_person_says(
    virtual_audio: VirtualAudio, tmp_path: Path, gain: float
) -> None:
    """An open speaker, as a laptop's: everything voicegrok plays comes back into the
    microphone at -12 dB and -6 dB. A question with a long answer, 20 s of listening to
    it (with a "Mm-hmm." said over it, in another voice, after 10 s), then "Wait, stop.
    What is 2 plus 2?" said over it. No turn that nobody spoke, the long answer plays on
    (through the filler) until the real interruption, and the real question is answered."""
    import soundfile

    from voicegrok.bench.turn_set import RATE, Voices

    stop_words, filler = tmp_path / "stop.wav", tmp_path / "filler.wav"
    words_over = "Wait, stop. What is 2 plus 2?"
    subprocess.run(
        [sys.executable, "-m", "voicegrok", "say", words_over, "-q", "--out", str(stop_words)],
        env=virtual_audio.env,
        check=True,
    )
    voice = "espeak:en-us+m3" if Voices.available("espeak:en-us+m3") else "piper"
    soundfile.write(str(filler), Voices(models.resolve("tts")).say("Mm-hmm.", voice), RATE)
    loop = virtual_audio.loopback(gain)  # the room's, from the start: the greeting's too
    try:
        talk = start_talk(virtual_audio, tmp_path)
        ready(talk, virtual_audio)
        rec = virtual_audio.record()
        virtual_audio.speak(0.5, str(DEMO / "turn1.wav"))
        asked_at = rec.now_s()
        virtual_audio.speak(10.0, str(filler))
        virtual_audio.speak(max(0.0, 20.0 - (rec.now_s() - asked_at)))
        bins = np.arange(asked_at + 3.0, rec.now_s(), 0.5)  # once the answer has begun
        loud = [rec.loudness(t, t + 0.5) > 0.01 for t in bins]
        virtual_audio.speak(str(stop_words), 8.0)
        rows = wait_for_metrics(tmp_path / "m.jsonl", 2, timeout_s=90)
    finally:
        loop.terminate()
        loop.wait(10)
    out, _err = stop(talk)
    rec.stop()
    # it played on (a pause for a noise it then took for an aside is allowed), to the end
    assert sum(loud) >= 0.75 * len(loud) and any(loud[-6:]), (loud, out)
    # (early answers withdrawn at pauses inside the question come before it)
    after_question = after_the_question(out)
    # (words released at a pause, "wait.", and withdrawn when the person went on, are
    # part of the one utterance)
    said = [f"you: {line}" for line in turn_lines(after_question)]
    assert len(said) == 1, out  # no turn that nobody spoke
    # the person's words, as whisper makes them out through the echo canceller: it damps
    # some of them while both talk ("8, stop. What is 2 plus 2?", "What is Q plus 2?":
    # offline, with this answer's echo at -6 dB, 4 of 6 places came out word for word)
    assert len(set(words(said[0])) & set(words(words_over))) >= 4, out
    assert out.count("(interrupted)") == 1, out  # only the real interruption
    assert [r["interrupted"] for r in rows[:2]] == [True, False], rows
    assert rows[0]["echo_erle_db"] is not None, rows  # the echo removed, measured
    assert "voicegrok: " in out.split(said[0], 1)[1], out  # the real question answered
