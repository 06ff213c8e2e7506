"""Audio helpers: conversion between formats and rates, loading and writing files.

Engines want fixed formats (whisper: 16 kHz mono float32; piper gives 22.05 kHz int16);
everything that comes in is converted here, with soxr for resampling.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from .errors import AudioInputError

__all__ = [
    "float_to_pcm16",
    "load_audio",
    "pcm16_to_float",
    "resample",
    "rms_dbfs",
    "to_mono",
    "trim_pcm16",
    "write_wav",
]

FloatAudio = npt.NDArray[np.float32]

SILENCE_DBFS = -60.0
"""Recordings quieter than this (RMS, dB full scale) are treated as silent."""


def to_mono(samples: npt.NDArray[np.floating]) -> FloatAudio:
    """Average the channels of a ``(frames, channels)`` array; a 1-D array is already mono."""
    a = np.asarray(samples, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1, dtype=np.float32)
    elif a.ndim != 1:
        raise AudioInputError(f"audio must be 1-D or (frames, channels), got shape {a.shape}")
    return a


def resample(samples: FloatAudio, from_hz: int, to_hz: int) -> FloatAudio:
    """Resample mono float32 audio (soxr, high quality). Returns the input when rates match."""
    if from_hz <= 0 or to_hz <= 0:
        raise AudioInputError(f"invalid sample rate: {from_hz} Hz -> {to_hz} Hz")
    if from_hz == to_hz or len(samples) == 0:
        return samples
    return np.asarray(soxr.resample(samples, from_hz, to_hz), dtype=np.float32)


def pcm16_to_float(pcm: bytes) -> FloatAudio:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: FloatAudio) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def rms_dbfs(samples: FloatAudio) -> float:
    """Loudness as RMS in dB full scale (-inf for digital silence)."""
    if len(samples) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def load_audio(path: str | Path, sample_rate_hz: int = 16000) -> FloatAudio:
    """Read any audio file libsndfile knows (WAV, FLAC, OGG, MP3...) as mono float32.

    Raises :class:`AudioInputError` with a one-line message for a missing file, a file that
    is not audio, an empty recording or a silent one.
    """
    p = Path(path)
    if not p.exists():
        raise AudioInputError(f"{p}: no such file")
    if p.is_dir():
        raise AudioInputError(f"{p}: is a folder, not an audio file")
    try:
        data, rate = soundfile.read(str(p), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioInputError(
            f"{p}: not a readable audio file ({_short(e)}); use WAV, FLAC, OGG or MP3"
        ) from None
    mono = to_mono(data)
    if len(mono) == 0:
        raise AudioInputError(f"{p}: the recording is empty")
    if rms_dbfs(mono) < SILENCE_DBFS:
        raise AudioInputError(f"{p}: the recording is silent (no speech to answer)")
    return resample(mono, int(rate), sample_rate_hz)


def write_wav(path: str | Path, pcm: bytes, sample_rate_hz: int) -> None:
    """Write mono signed 16-bit PCM to a WAV file (creating parent folders)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate_hz)
        w.writeframes(pcm)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:120]


def trim_pcm16(pcm: bytes, sample_rate_hz: int, *, lead_ms: float, tail_ms: float) -> bytes:
    """Cut 16-bit mono PCM's leading and trailing silence down to ``lead_ms`` / ``tail_ms``.

    Silence is anything below 1% of full scale. Audio with no sound at all is returned as is.
    """
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 328)
    if len(loud) == 0:
        return pcm
    start = max(0, int(loud[0]) - int(sample_rate_hz * lead_ms / 1000))
    end = min(len(samples), int(loud[-1]) + 1 + int(sample_rate_hz * tail_ms / 1000))
    return samples[start:end].tobytes()
