"""Audio input: any rate and channel count in, clear errors for unusable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicegrok.audio import (
    StreamResampler,
    float_to_int16,
    float_to_pcm16,
    int16_to_float,
    load_audio,
    pcm16_samples,
    pcm16_to_float,
    resample,
    rms_dbfs,
    trim_pcm16,
)
from voicegrok.errors import AudioInputError

DATA = Path(__file__).parent / "data"


def test_stereo_44k_flac_becomes_16k_mono_float() -> None:
    """The shared JFK recording (44.1 kHz stereo) is converted for whisper."""
    audio = load_audio(DATA / "jfk.flac")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / 16000 - 11.0) < 0.1
    assert rms_dbfs(audio) > -40


def test_resampling_keeps_duration_and_pitch() -> None:
    """A 440 Hz tone stays 440 Hz and 1 s long from 48 kHz to 16 kHz."""
    t = np.arange(48000) / 48000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, 48000, 16000)
    assert len(out) == 16000
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
    assert abs(peak_hz - 440) < 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def test_not_audio(tmp_path: Path) -> None:
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio at all")
    with pytest.raises(AudioInputError, match="not a readable audio file"):
        load_audio(p)


def test_empty_recording(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    soundfile.write(p, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioInputError, match="empty"):
        load_audio(p)


def test_silent_recording(tmp_path: Path) -> None:
    p = tmp_path / "silent.wav"
    soundfile.write(p, np.zeros(16000, dtype=np.float32), 8000)
    with pytest.raises(AudioInputError, match="silent"):
        load_audio(p)


def test_trimming_keeps_the_sound_and_the_silence_asked_for() -> None:
    rate = 1000
    sound = (np.sin(np.arange(300) / 3) * 20000).astype(np.int16)
    sound[0] = sound[-1] = 10000  # the sound's first and last samples are loud
    pcm = np.concatenate([np.zeros(200, np.int16), sound, np.zeros(400, np.int16)]).tobytes()
    out = np.frombuffer(trim_pcm16(pcm, rate, lead_ms=10, tail_ms=50), np.int16)
    assert len(out) == 10 + 300 + 50
    assert np.array_equal(out[10:310], sound)
    silent = np.zeros(100, np.int16).tobytes()
    assert trim_pcm16(silent, rate, lead_ms=0, tail_ms=0) == silent


def test_pcm16_survives_a_round_trip_through_float_exactly() -> None:
    """Every 16-bit value comes back from float32 unchanged; -32768 is -1.0."""
    pcm = np.arange(-32768, 32768, dtype="<i2").tobytes()
    samples = pcm16_to_float(pcm)
    assert samples.dtype == np.float32
    assert samples[0] == -1.0 and samples[32768] == 0.0 and samples.max() < 1.0
    assert float_to_pcm16(samples) == pcm


def test_float_survives_a_round_trip_within_half_a_step() -> None:
    """Float audio up to the loudest 16-bit value comes back within half a step (rounded,
    not truncated toward zero)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 32767 / 32768, 10000).astype(np.float32)
    back = int16_to_float(float_to_int16(x))
    assert np.max(np.abs(back - x)) <= 0.5 / 32768 + 1e-7
    steps = np.array([0.4, 0.6, -0.4, -0.6], np.float32) / 32768
    assert list(float_to_int16(steps)) == [0, 1, 0, -1]


def test_float_beyond_full_scale_is_clipped() -> None:
    """Samples past full scale become the loudest 16-bit values, never wrap around."""
    loud = np.array([1.0, 1.5, 40.0, -1.0, -1.5, -40.0], dtype=np.float32)
    assert list(float_to_int16(loud)) == [32767, 32767, 32767, -32768, -32768, -32768]
    assert pcm16_samples(float_to_pcm16(loud)).tolist() == float_to_int16(loud).tolist()


def test_pcm16_with_half_a_sample_is_refused() -> None:
    """An odd number of bytes is not 16-bit PCM: a clear error, not a shifted stream."""
    assert len(pcm16_to_float(b"")) == 0
    with pytest.raises(ValueError, match="even number of bytes"):
        pcm16_to_float(b"\x00\x01\x02")


def test_stream_resampler_passes_audio_at_its_rate_through() -> None:
    """Chunks already at the target rate are returned as they are, not copied."""
    to16k = StreamResampler(16000, np.float32)
    chunk = np.ones(320, dtype=np.float32)
    assert to16k(chunk, 16000) is chunk
    pcm = np.ones(320, dtype=np.int16).tobytes()
    assert StreamResampler(22050, np.int16).pcm16(pcm, 22050) is pcm


def test_stream_resampler_keeps_a_tone_continuous_across_chunks() -> None:
    """A 440 Hz tone streamed in 20 ms chunks from 48 kHz to 16 kHz keeps its pitch, and
    no chunk boundary makes a step steeper than the tone's own slope (no clicks)."""
    tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32)
    to16k = StreamResampler(16000, np.float32)
    out = np.concatenate([to16k(tone[i : i + 960], 48000) for i in range(0, 48000, 960)])
    assert out.dtype == np.float32
    assert 15000 < len(out) <= 16000  # soxr holds back its filter's length until more comes
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
    assert abs(peak_hz - 440) < 2
    settled = out[200:]  # past the filter's onset
    assert np.max(np.abs(np.diff(settled))) < 1.02 * 2 * np.pi * 440 / 16000


def test_stream_resampler_starts_over_when_the_rate_changes() -> None:
    """A chunk at a new rate gets a new soxr stream: its length follows the new ratio (the
    old stream would make a third of a second of 8 kHz audio out of a second)."""
    to16k = StreamResampler(16000, np.int16)
    one_s_48k = np.zeros(48000, dtype=np.int16)
    assert 15000 < len(to16k(one_s_48k, 48000)) <= 16000
    assert 14000 < len(to16k(one_s_48k[:8000], 8000)) <= 16000
    assert 15000 < len(to16k.pcm16(one_s_48k.tobytes(), 48000)) / 2 <= 16000
    assert len(to16k(one_s_48k[:16000], 16000)) == 16000  # at the target rate: passed through


def test_a_resampled_stream_ends_with_what_the_filter_held_back() -> None:
    """soxr holds back the end of each chunk until the next: at the end of an answer, the
    rest is flushed, so that a client at another rate gets all of it."""
    rate = 22050
    tone = (8000 * np.sin(np.arange(rate * 3 // 10) * 0.05)).astype(np.int16)
    to8k = StreamResampler(8000, np.int16)
    pcm = b"".join(to8k.pcm16(c.tobytes(), rate) for c in np.array_split(tone, 3))
    held = to8k.flush_pcm16()
    assert held, "soxr held nothing back"
    assert abs((len(pcm) + len(held)) // 2 - 2400) <= 1
    assert to8k.flush_pcm16() == b""  # nothing left; the next chunk starts a new stream
    assert StreamResampler(8000, np.int16).flush_pcm16() == b""
