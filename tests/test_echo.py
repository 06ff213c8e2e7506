"""The echo canceller's logic on synthetic streams (no devices): which far-end sound each
microphone frame is paired with, gaps in either stream, and the headset case."""

from __future__ import annotations

import time

import numpy as np
import pytest

from voicegrok.adapters.echo import EchoCanceller
from voicegrok.adapters.echo_path import EchoPath
from voicegrok.audio import load_audio

from .conftest import DEMO

RATE = 16000


def speech(seconds: float, name: str = "turn1.wav") -> np.ndarray:
    """``seconds`` of a recorded voice (the assistant's, as far as the test cares)."""
    audio = load_audio(str(DEMO / name), RATE)
    audio = audio[np.argmax(np.abs(audio) > 0.02) :]  # from its first word
    return np.resize(audio, int(seconds * RATE)).astype(np.float32)


def noise(samples: int, seed: int = 0) -> np.ndarray:
    """A real microphone's own noise, about -70 dBFS: it is never digitally silent."""
    return np.random.default_rng(seed).normal(0, 10**-3.5, samples).astype(np.float32)


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def render(aec: EchoCanceller, far: np.ndarray) -> None:
    """The speaker renders ``far`` from now on (as its audio callback would report it)."""
    aec._far.append((time.perf_counter() + len(far) / RATE, pcm(far)))


def run(mic_of_far: float, seconds: float = 3.0) -> tuple[EchoCanceller, np.ndarray, np.ndarray]:
    """The speaker plays a voice; the microphone hears it 50 ms later (the devices'
    latency) at ``mic_of_far`` of its level, over its own noise."""
    aec = EchoCanceller(RATE, RATE, delay_ms=50)
    far = speech(seconds)
    render(aec, far)
    mic = mic_of_far * np.concatenate([np.zeros(RATE // 20, np.float32), far])[: len(far)]
    mic += noise(len(mic))
    out = np.concatenate([aec.process(mic[i : i + 320]) for i in range(0, len(mic), 320)])
    aec.close()
    return aec, mic, out


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def test_the_echo_of_the_speaker_is_removed() -> None:
    aec, mic, out = run(0.5)
    assert not aec.no_echo
    # after AEC3 has converged (and the first second's half duplex), the echo is gone
    assert rms(out[RATE * 2 :]) < 0.1 * rms(mic[RATE * 2 :])


def test_after_relearn_it_mutes_near_the_speaker_until_it_removes_the_echo_again() -> None:
    """The live loop's greeting has been heard: with echo, the canceller learns it anew on
    the first answer (the path may have changed while the speaker was silent)."""
    aec, _, _ = run(0.5)
    assert aec.converged
    aec.relearn()
    assert not aec.converged
    headset, _, _ = run(0.0)
    assert headset.converged and headset.no_echo
    headset.relearn()
    assert headset.converged  # nothing to learn


def test_a_speaker_heard_only_after_a_second_is_learned_from_then_on() -> None:
    """The microphone heard only its own noise for the first 1.5 s the speaker played (a
    headset taken off), then the echo at -6 dB: taken at first for a headset, the
    canceller must not pass that echo on as it is (it was answered)."""
    aec = EchoCanceller(RATE, RATE, delay_ms=50)
    far = speech(5.0)
    render(aec, far)
    mic = 0.5 * np.concatenate([np.zeros(RATE // 20, np.float32), far])[: len(far)]
    mic[: int(1.5 * RATE)] = 0.0
    mic += noise(len(mic))
    out = []
    for i in range(0, len(mic), 320):
        out.append(aec.process(mic[i : i + 320]))
        if i == int(1.4 * RATE):
            assert aec.no_echo  # (nothing heard yet)
    aec.close()
    assert not aec.no_echo
    late = int(2.5 * RATE)  # a second after the echo came
    assert rms(np.concatenate(out)[late:]) < 0.1 * rms(mic[late:])


def test_a_muted_microphone_is_not_taken_for_a_headset() -> None:
    """The microphone gave digital silence for the first 1.5 s the speaker played (muted,
    or its stream not flowing yet: on the rig, seconds of the greeting), then the echo at
    -6 dB. Digital silence tells nothing of the echo: taken for a headset, the canceller
    passed the echo on as it was for about a second (answered, or interrupting the
    answer); still learning, it mutes the microphone near the speaker's sound instead."""
    aec = EchoCanceller(RATE, RATE, delay_ms=50)
    far = speech(5.0)
    render(aec, far)
    mic = 0.5 * np.concatenate([np.zeros(RATE // 20, np.float32), far])[: len(far)]
    mic[: int(1.5 * RATE)] = 0.0
    out = []
    for i in range(0, len(mic), 320):
        out.append(aec.process(mic[i : i + 320]))
        if i == int(1.4 * RATE):
            assert not aec.no_echo and not aec.converged
    aec.close()
    cleaned = np.concatenate(out)
    assert not aec.no_echo and aec.converged
    came = slice(int(1.5 * RATE), int(2.5 * RATE))  # the echo's first second
    assert rms(cleaned[came]) < 0.03 * rms(mic[came])
    late = int(2.5 * RATE)
    assert rms(cleaned[late:]) < 0.1 * rms(mic[late:])


@pytest.mark.filterwarnings("error")
def test_a_speaker_silent_through_the_check_is_not_heard_and_prints_nothing() -> None:
    """Taken for a headset, the person talks while the speaker's last loud sound is still
    fading from its smoothed level: the far end is silence over the whole check, whose
    correlation is then undefined (numpy warned on the user's terminal)."""
    path = EchoPath()
    path.no_echo = True
    path._db.extend([-10.0] * 100)
    for k in range(path.powers.maxlen or 0):
        path.powers.append((0.0, 1e6 * (1 + k % 3)))
    assert not any(path.heard_after_all() for _ in range(10))


def test_with_a_headset_the_microphone_passes_untouched() -> None:
    """The speaker is never heard in the microphone: after a second the canceller stops
    suppressing, so a person talking over the answer is heard (barge-in)."""
    aec = EchoCanceller(RATE, RATE)
    render(aec, speech(3.0))
    voice = speech(3.0, "turn4.wav")  # someone talking, nothing of the speaker
    voice[: 2 * RATE] = 0.0
    voice += noise(len(voice))
    out = np.concatenate([aec.process(voice[i : i + 320]) for i in range(0, len(voice), 320)])
    aec.close()
    assert aec.no_echo
    assert rms(out[int(2.2 * RATE) :]) > 0.8 * rms(voice[int(2.2 * RATE) :])


def test_time_the_speaker_was_not_served_is_filled_with_silence() -> None:
    """A starved process misses speaker callbacks; the device played silence meanwhile,
    so the far end gets that silence and stays on time."""
    aec = EchoCanceller(RATE, RATE)
    block = pcm(speech(0.1))
    aec._far.extend([(10.0, block), (10.1, block), (12.1, block)])  # 1.9 s without a call
    aec._take_far()
    assert len(aec._far_buf) == pytest_approx(0.3 * RATE + 1.9 * RATE)
    aec.close()


def pytest_approx(n: float) -> object:
    import pytest

    return pytest.approx(n, abs=RATE * 0.06)


def timed(aec: EchoCanceller, at_s: float) -> None:
    """A 20 ms microphone block handed over at ``at_s`` (its capture timestamp)."""
    aec.captured(at_s)
    aec.process(np.zeros(320, np.float32))


def test_microphone_blocks_held_up_and_then_handed_over_at_once_keep_its_clock() -> None:
    """A busy process gets 100 ms of microphone blocks late, in a burst: the sound was
    captured on time, so the clock stays (moved, every later frame waited that much longer
    for its far end: a soak heard answers later and later)."""
    aec = EchoCanceller(RATE, RATE)
    for i in range(50):
        timed(aec, 100.0 + (i + 1) * 0.02)
    anchored = aec._near_t0
    assert anchored == pytest_approx_s(100.0)
    for _ in range(50, 55):  # held up: handed over together, 100 ms after the last was due
        timed(aec, 100.0 + 55 * 0.02 + 0.1)
    for i in range(55, 300):
        timed(aec, 100.0 + (i + 1) * 0.02)
    assert aec._near_t0 == pytest_approx_s(anchored)
    aec.close()


def test_microphone_samples_really_lost_move_its_clock() -> None:
    """100 ms never delivered (an overrun): the sound after it is that much later than its
    sample count says, and the clock follows once the loss is seen to last."""
    aec = EchoCanceller(RATE, RATE)
    for i in range(50):
        timed(aec, 100.0 + (i + 1) * 0.02)
    for i in range(55, 300):  # blocks 50..54 lost
        timed(aec, 100.0 + (i + 1) * 0.02)
    assert aec._near_t0 == pytest_approx_s(100.1)
    aec.close()


def pytest_approx_s(t: float) -> object:
    import pytest

    return pytest.approx(t, abs=0.005)


def test_a_frame_waits_for_its_far_end_only_while_the_speaker_plays() -> None:
    """A microphone frame is paired with far-end sound rendered ~50 ms after its capture.
    While the speaker plays (audio queued, or sound rendered lately) the frame waits for
    it; while the speaker is idle that far end will be silence, so the frame goes on at
    once (the end of a person's turn is not found 50 ms late)."""
    for queued, last_render, waits in (
        (False, np.zeros(320, np.float32), False),
        (True, np.zeros(320, np.float32), True),
        (False, speech(0.02), True),  # the tail of an answer: its echo is still coming
    ):
        aec = EchoCanceller(RATE, RATE, speaker_busy=lambda q=queued: q)
        now = time.perf_counter()
        aec._far.append((now, pcm(last_render)))  # the speaker has rendered up to now
        aec.captured(now)
        t = time.perf_counter()
        aec.process(np.zeros(320, np.float32))
        elapsed = time.perf_counter() - t
        aec.close()
        assert (elapsed > 0.1) is waits, (queued, waits, elapsed)


@pytest.mark.parametrize("speaker_clock", [1.005, 0.995], ids=["slow", "fast"])
def test_the_echo_stays_removed_when_the_speaker_clock_drifts(speaker_clock: float) -> None:
    """Speaker and microphone run on clocks of their own: here the speaker plays 0.5% slower
    (or faster) than its nominal rate, so the echo's delay drifts by 5 ms a second, as on
    the virtual devices (seen drifting 70 to 100 ms in 6 s there, and AEC3 lost the echo
    for seconds when the far end was then set back in one step). The far end follows the
    speaker's own sample clock, so the echo stays removed; and from the first word, none
    of it is let through before AEC3 has converged."""
    import soxr

    aec = EchoCanceller(RATE, RATE, delay_ms=50)
    far = speech(20.0)
    start, block = time.perf_counter(), 320
    rendered = [
        (start + (k + block) / RATE * speaker_clock, pcm(far[k : k + block]))
        for k in range(0, len(far), block)
    ]
    played = soxr.resample(far, RATE, RATE * speaker_clock)  # on the microphone's clock
    echo = np.concatenate([np.zeros(int(0.08 * RATE), np.float32), played])[: len(played)]
    mic = (0.25 * echo).astype(np.float32)
    out = []
    for i in range(0, len(mic), block):
        now = start + (i + block) / RATE
        while rendered and rendered[0][0] <= now + 0.1:  # rendered ahead of its echo
            aec._far.append(rendered.pop(0))
        aec.captured(now)
        out.append(aec.process(mic[i : i + block]))
    aec.close()
    cleaned = np.concatenate(out)
    left = [rms(cleaned[i : i + RATE]) / rms(mic[i : i + RATE]) for i in range(0, 19 * RATE, RATE)]
    assert max(left) < 10 ** (-30 / 20), np.round(20 * np.log10(np.maximum(left, 1e-9)))
    aec_erle = aec.erle_db
    assert aec.converged and aec_erle is not None and aec_erle > 30
    figures = aec.take_erle()  # a turn's figures: since the last ones taken
    assert figures["echo_erle_db"] == aec_erle and figures["echo_erle_p10_db"] is not None
    assert aec.take_erle() == {
        "echo_erle_db": None,
        "echo_erle_p10_db": None,
        "echo_leaks_muted_ms": None,
    }


def through(aec: EchoCanceller, far: np.ndarray, mic: np.ndarray) -> np.ndarray:
    """The speaker renders ``far`` (100 ms ahead of its echo) while ``mic`` is captured,
    both on one clock; the cleaned microphone."""
    start, block = time.perf_counter(), 320
    rendered = [
        (start + (k + block) / RATE, pcm(far[k : k + block])) for k in range(0, len(far), block)
    ]
    out = []
    for i in range(0, len(mic), block):
        now = start + (i + block) / RATE
        while rendered and rendered[0][0] <= now + 0.1:
            aec._far.append(rendered.pop(0))
        aec.captured(now)
        out.append(aec.process(mic[i : i + block]))
    aec.close()
    return np.concatenate(out)


def delayed(audio: np.ndarray, delay_s: float, gain: float) -> np.ndarray:
    return gain * np.concatenate([np.zeros(int(delay_s * RATE), np.float32), audio])[: len(audio)]


def worst_leak_db(cleaned: np.ndarray, mic: np.ndarray, from_s: float, to_s: float) -> float:
    """The loudest quarter second of echo left, against the microphone's (dB)."""
    q = RATE // 4
    return max(
        20 * np.log10(max(rms(cleaned[i : i + q]), 1e-9) / rms(mic[i : i + q]))
        for i in range(int(from_s * RATE), int(to_s * RATE), q)
    )


def test_echo_let_through_when_the_echo_path_changes_is_muted() -> None:
    """Converged, then the echo's delay jumps by 30 ms (the speaker moved, a device's
    buffer grew): AEC3 alone let the echo through at -21 dB for a second; the microphone
    is no louder than the speaker's echo could be, so it is muted."""
    far = speech(14.0)
    echo = delayed(far, 0.08, 0.5)
    echo[6 * RATE :] = delayed(far, 0.11, 0.5)[6 * RATE :]
    aec = EchoCanceller(RATE, RATE, delay_ms=50)
    cleaned = through(aec, far, echo.astype(np.float32))
    assert worst_leak_db(cleaned, echo, 2, 14) < -30
    assert (aec.take_erle()["echo_leaks_muted_ms"] or 0) > 0  # and said so


def test_a_person_talking_over_the_answer_is_heard_and_the_next_answer_is_not() -> None:
    """The person talks over the answer 6 dB above its echo (a laptop at -6 dB): the
    voice comes through; the speaker falls silent, then plays the next answer, whose echo
    is not let through (seen on the rig: AEC3, thrown by the double talk, let the next
    answer's echo through, and it was answered)."""
    far = speech(14.0)
    far[6 * RATE : 8 * RATE] = 0.0
    echo = delayed(far, 0.08, 0.5)
    voice = np.zeros_like(far)
    said = speech(2.0, "turn4.wav")
    voice[4 * RATE : 6 * RATE] = said * 2 * rms(echo[4 * RATE : 6 * RATE]) / rms(said)
    mic = (echo + voice).astype(np.float32)
    cleaned = through(EchoCanceller(RATE, RATE, delay_ms=50), far, mic)
    talk = slice(4 * RATE, 6 * RATE)
    assert rms(cleaned[talk]) > 0.7 * rms(voice[talk])
    assert worst_leak_db(cleaned, mic, 8, 14) < -40


def test_the_first_sounds_of_words_said_over_the_answer_come_through() -> None:
    """AEC3 takes a voice that starts over the speaker for echo at first and removes much of
    its first 50 ms (here 10-15 dB; on the rig, 65 dB of "Wait"'s first 10 ms): the
    listener then heard the words late and without their start. A frame far louder than
    any echo it could hold passes as captured for the first 80 ms; the echo alone, before
    and after the words, is still not let through."""
    far = speech(12.0)
    echo = delayed(far, 0.08, 0.25)  # a laptop's speaker at -12 dB...
    voice = np.zeros_like(far)
    said = speech(1.5, "turn2.wav")
    at = 5 * RATE
    voice[at : at + len(said)] = said * rms(far) / rms(said)  # ... the person at full level
    mic = (echo + voice).astype(np.float32)
    cleaned = through(EchoCanceller(RATE, RATE, delay_ms=50), far, mic)
    start = slice(at + RATE // 100, at + RATE * 6 // 100)  # its 10th to 60th ms
    loss_db = 20 * np.log10(rms(cleaned[start]) / rms(mic[start]))
    assert loss_db > -3, f"{loss_db:.1f} dB"
    assert worst_leak_db(cleaned, mic, 2, 4.9) < -40
    assert worst_leak_db(cleaned, mic, 8, 12) < -40
