"""Audio input: any rate and channel count in, clear errors for unusable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicegrok.audio import load_audio, resample, rms_dbfs, trim_pcm16
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
