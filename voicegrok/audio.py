"""Audio helpers: conversion between formats and rates, loading and writing files.

Engines want fixed formats (whisper: 16 kHz mono float32; piper gives 22.05 kHz int16);
everything that comes in is converted here, with soxr for resampling. Every conversion
between 16-bit PCM and float32 goes through :func:`int16_to_float` / :func:`float_to_int16`
(one scale, one rounding), every streamed resampling through :class:`StreamResampler`.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from .errors import AudioInputError
from .rates import DEFAULT_OUTPUT_RATE_HZ, PIPER_RATE_HZ, REALTIME_RATE_HZ, WHISPER_RATE_HZ

__all__ = [
    "DEFAULT_OUTPUT_RATE_HZ",
    "MAX_RATE_HZ",
    "MIN_RATE_HZ",
    "PIPER_RATE_HZ",
    "REALTIME_RATE_HZ",
    "WHISPER_RATE_HZ",
    "FloatAudio",
    "Int16Audio",
    "StreamResampler",
    "check_finite",
    "check_rate",
    "float_to_int16",
    "float_to_pcm16",
    "int16_to_float",
    "load_audio",
    "pcm16_samples",
    "pcm16_to_float",
    "resample",
    "rms_dbfs",
    "to_mono",
    "trim_pcm16",
    "write_wav",
]

FloatAudio = npt.NDArray[np.float32]
"""Mono float32 samples, full scale -1.0 to 1.0."""
Int16Audio = npt.NDArray[np.int16]
"""Mono signed 16-bit samples."""

SILENCE_DBFS = -60.0
"""Recordings quieter than this (RMS, dB full scale) are treated as silent."""
_PCM16_SCALE = 32768.0
"""16-bit full scale: ``int16_to_float`` divides by it, ``float_to_int16`` multiplies."""
_QUIET_PCM16 = 328
"""Peak (16-bit) at or below which :func:`trim_pcm16` counts a sample as silence: 1% of full
scale."""
MIN_RATE_HZ = 1_000
"""Hertz: the lowest sample rate taken (resampling from 1 Hz makes 16,000 samples of each)."""
MAX_RATE_HZ = 768_000
"""Hertz: the highest sample rate taken (the fastest sound cards')."""


def check_rate(rate_hz: float) -> None:
    """Raise :class:`AudioInputError` unless ``rate_hz`` is a sample rate audio can have,
    ``MIN_RATE_HZ`` to ``MAX_RATE_HZ`` (soxr loops for ever on NaN, infinite or huge rates,
    and upsampling from a few hertz makes gigabytes)."""
    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise AudioInputError(
            f"invalid sample rate: {rate_hz} Hz (audio runs at {MIN_RATE_HZ} to {MAX_RATE_HZ} Hz)"
        )


def check_finite(samples: npt.NDArray[Any]) -> None:
    """Raise :class:`AudioInputError` when float audio holds NaN or infinite samples (no
    conversion can make sound of them; resampling spreads them over their neighbours)."""
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        raise AudioInputError("the audio holds invalid samples (NaN or infinite)")


def to_mono(samples: npt.NDArray[np.floating]) -> FloatAudio:
    """Average the channels of a ``(frames, channels)`` array; a 1-D array is already mono."""
    a = np.asarray(samples, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1, dtype=np.float32)
    elif a.ndim != 1:
        raise AudioInputError(f"audio must be 1-D or (frames, channels), got shape {a.shape}")
    return a


def resample(samples: FloatAudio, from_hz: int, to_hz: int) -> FloatAudio:
    """Resample mono float32 audio (soxr, high quality). Returns the input when rates match.

    Raises :class:`AudioInputError` for a rate outside ``check_rate``'s range or samples
    that are NaN or infinite. Samples beyond full scale are clipped to it first (any device
    would): a finite 5.7e37 overflowed soxr's filter into NaN (found by hypothesis)."""
    check_rate(from_hz)
    check_rate(to_hz)
    check_finite(samples)
    if from_hz == to_hz or len(samples) == 0:
        return samples
    clipped = np.clip(samples, -1.0, 1.0)
    return np.asarray(soxr.resample(clipped, from_hz, to_hz), dtype=np.float32)


def pcm16_samples(pcm: bytes) -> Int16Audio:
    """The samples of little-endian 16-bit PCM (a view, no copy).

    Raises ValueError for an odd number of bytes: half a sample means the bytes are not
    16-bit PCM or a chunk was cut mid-sample, and guessing where the next sample starts
    would garble the rest of the stream."""
    if len(pcm) % 2:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
    samples: Int16Audio = np.frombuffer(pcm, dtype="<i2")
    return samples


def int16_to_float(samples: Int16Audio) -> FloatAudio:
    """16-bit samples as float32: divided by 32768, so -32768 is exactly -1.0."""
    return samples.astype(np.float32) / np.float32(_PCM16_SCALE)


def float_to_int16(samples: FloatAudio) -> Int16Audio:
    """Float samples as 16-bit: multiplied by 32768, rounded to the nearest integer (halves
    to even), clipped to -32768..32767 (so 1.0 and above, infinity too, become 32767).

    The inverse of :func:`int16_to_float`: 16-bit samples survive the round trip exactly,
    float ones come back within half a step (1 / 65536). NaN has no 16-bit value (the cast
    made full-scale clicks of it): :class:`AudioInputError`."""
    full_scale = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)  # no overflow
    if np.isnan(full_scale).any():
        raise AudioInputError("the audio holds NaN samples: they have no 16-bit value")
    scaled = np.rint(full_scale * np.float32(_PCM16_SCALE))
    out: Int16Audio = np.minimum(scaled, 32767).astype(np.int16)
    return out


def pcm16_to_float(pcm: bytes) -> FloatAudio:
    """Little-endian 16-bit PCM as float32 samples (see :func:`pcm16_samples`,
    :func:`int16_to_float`)."""
    return int16_to_float(pcm16_samples(pcm))


def float_to_pcm16(samples: FloatAudio) -> bytes:
    """Float samples as little-endian 16-bit PCM (see :func:`float_to_int16`)."""
    return float_to_int16(samples).astype("<i2", copy=False).tobytes()


S = TypeVar("S", np.float32, np.int16)


class StreamResampler(Generic[S]):
    """Resamples a stream of mono chunks to ``to_hz``, the filter's state kept between chunks
    (no clicks at their joins).

    Chunks already at ``to_hz`` pass through untouched; when the chunks' rate changes (a
    device or a client switched), a new soxr stream starts at the new rate. ``dtype`` is
    the samples' type both ways (soxr resamples 16-bit audio without a float copy).
    """

    def __init__(self, to_hz: int, dtype: type[S], *, quality: str = "HQ") -> None:
        """``quality``: soxr's recipe ("QQ" quick, "LQ", "MQ", "HQ", "VHQ")."""
        check_rate(to_hz)
        self.to_hz = to_hz
        self._dtype: np.dtype[S] = np.dtype(dtype)
        self._quality = quality
        self._stream: Any = None
        self._from_hz = 0

    def __call__(self, samples: npt.NDArray[S], from_hz: int) -> npt.NDArray[S]:
        """``samples`` (at ``from_hz``) at ``to_hz``. soxr holds back the end of a chunk (its
        filter's length) until the next one comes, so a chunk may even come out empty.

        Raises :class:`AudioInputError` for a rate outside ``check_rate``'s range, float
        samples that are NaN or infinite, or samples of another type than ``dtype``."""
        check_finite(samples)
        if from_hz == self.to_hz:
            return samples
        if samples.dtype != self._dtype:
            raise AudioInputError(f"{samples.dtype} samples given to a {self._dtype} resampler")
        if self._stream is None or from_hz != self._from_hz:
            check_rate(from_hz)
            self._stream = soxr.ResampleStream(
                from_hz, self.to_hz, 1, dtype=self._dtype.name, quality=self._quality
            )
            self._from_hz = from_hz
        out: npt.NDArray[S] = np.asarray(self._stream.resample_chunk(samples), dtype=self._dtype)
        return out

    def pcm16(self: StreamResampler[np.int16], pcm: bytes, from_hz: int) -> bytes:
        """16-bit PCM at ``from_hz`` as 16-bit PCM at ``to_hz`` (the same bytes when the rates
        match)."""
        if from_hz == self.to_hz:
            return pcm
        return self(pcm16_samples(pcm), from_hz).astype("<i2", copy=False).tobytes()

    def flush_pcm16(self: StreamResampler[np.int16]) -> bytes:
        """The end of the stream: what soxr still holds back, as 16-bit PCM (the stream then
        starts afresh). Without it, the last ~60 ms of an answer sent at 8 kHz were lost."""
        if self._stream is None:
            return b""
        tail = np.asarray(self._stream.resample_chunk(np.zeros(0, self._dtype), last=True))
        self._stream = None
        return tail.astype("<i2", copy=False).tobytes()


def rms_dbfs(samples: FloatAudio) -> float:
    """Loudness as RMS in dB full scale (-inf for digital silence)."""
    if len(samples) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms != 0 else float("-inf")  # NaN stays NaN, not silence


def load_audio(path: str | Path, sample_rate_hz: int = WHISPER_RATE_HZ) -> FloatAudio:
    """Read any audio file libsndfile knows (WAV, FLAC, OGG, MP3...) as mono float32.

    Raises :class:`AudioInputError` with a one-line message for a missing file, a file that
    is not audio, an empty recording, a silent one, or one with a sample rate no audio has
    or invalid (NaN, infinite) samples.
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
    try:
        return resample(mono, int(rate), sample_rate_hz)
    except AudioInputError as e:  # a rate no audio has, NaN or infinite samples
        raise AudioInputError(f"{p}: {e}") from None


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
    check_rate(sample_rate_hz)
    if not (lead_ms >= 0 and tail_ms >= 0):
        raise ValueError(f"silences to keep must be 0 ms or more, not {lead_ms}, {tail_ms}")
    samples = pcm16_samples(pcm)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _QUIET_PCM16)
    if len(loud) == 0:
        return pcm
    start = max(0, int(loud[0]) - int(sample_rate_hz * lead_ms / 1000))
    end = min(len(samples), int(loud[-1]) + 1 + int(sample_rate_hz * tail_ms / 1000))
    return samples[start:end].tobytes()
