"""Property-based fuzzing (hypothesis) of the audio path: client audio as it comes off the
wire (base64 16-bit PCM, any byte count), the PCM and float conversions, resampling in one
go and streamed, at any rate. Each gives the right audio or a clear error (ValueError for
bytes that are not 16-bit PCM, :class:`AudioInputError` for rates no audio has and samples
no sound has): never a crash, a hang or quiet garbage."""

from __future__ import annotations

import base64
import faulthandler
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from voicegrok.audio import (
    MAX_RATE_HZ,
    MIN_RATE_HZ,
    StreamResampler,
    float_to_int16,
    float_to_pcm16,
    load_audio,
    pcm16_to_float,
    resample,
    trim_pcm16,
)
from voicegrok.errors import AudioInputError
from voicegrok.protocol import realtime as rt

from .fuzz_strategies import texts

AUDIO = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ABSURD = [0, -1, 1, 999, 10**9, 2**70, -(2**63), math.nan, math.inf, -math.inf]
"""Rates no audio has: soxr looped for ever on NaN, infinite and huge ones, and made
gigabytes out of a few samples at 1 Hz."""
rates = st.one_of(
    st.sampled_from([8000, 16000, 22050, 24000, 44100, 48000]),
    st.integers(MIN_RATE_HZ, MAX_RATE_HZ),
    st.sampled_from(ABSURD),
)
float_samples = st.floats(width=32, allow_nan=True, allow_infinity=True)
float_audio = hnp.arrays(
    np.float32,
    st.one_of(st.integers(0, 2000), st.just(240_000)),  # up to 10 s at 24 kHz
    elements=st.floats(-1, 1, width=32) | float_samples,
    fill=st.just(0.0),
)


def usable(rate_hz: float) -> bool:
    return MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A call that never returns (as soxr's on a NaN rate) ends the run with a traceback
    instead of hanging it."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@AUDIO
@given(st.binary(max_size=4001))
@example(b"\x00")
@example(b"")
def test_pcm16_bytes_become_samples_exactly_or_are_refused(pcm: bytes) -> None:
    """An even byte count is samples in full scale that come back to the same bytes; an
    odd one is refused (half a sample would shift the rest of the stream)."""
    if len(pcm) % 2:
        with pytest.raises(ValueError, match="even number of bytes"):
            pcm16_to_float(pcm)
        return
    samples = pcm16_to_float(pcm)
    assert samples.dtype == np.float32 and len(samples) == len(pcm) // 2
    assert np.all((samples >= -1) & (samples < 1))
    assert float_to_pcm16(samples) == pcm


@AUDIO
@given(
    st.one_of(
        st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
        st.text(alphabet="AQgw+/=\n -_", max_size=12),
        texts,
    )
)
@example("AAA=")  # one byte: half a sample
@example("AAAA\n")
def test_client_audio_is_exact_pcm_or_refused(audio: str) -> None:
    """What ``input_audio_buffer.append`` carries is the exact bytes of standard base64
    with an even count, or the event is refused with ``invalid_base64`` (or an
    ``invalid_value`` for text that is no Unicode)."""
    message = json.dumps({"type": "input_audio_buffer.append", "audio": audio})
    try:
        event = rt.parse_client_event(message)
    except rt.ProtocolError as e:
        assert e.code in ("invalid_base64", "invalid_value") and e.message
        return
    assert isinstance(event, rt.InputAudioBufferAppend)
    assert event.audio == base64.b64decode(audio, validate=True)
    assert len(event.audio) % 2 == 0


@AUDIO
@given(hnp.arrays(np.float32, st.integers(0, 300), elements=float_samples))
@example(np.array([np.nan], np.float32))  # cast to a full-scale click
@example(np.array([1.0384594e34, -3e38, np.inf], np.float32))  # overflowed when scaled
def test_float_audio_becomes_16_bit_or_is_refused(samples: np.ndarray) -> None:
    """Finite samples come back within half a step, clipped to full scale (infinities
    too); NaN has no 16-bit value and is refused (it became a full-scale click)."""
    if np.isnan(samples).any():
        with pytest.raises(AudioInputError, match="NaN"):
            float_to_int16(samples)
        return
    out = float_to_int16(samples)
    clipped = np.clip(samples.astype(np.float64), -1.0, 32767 / 32768)
    assert out.dtype == np.int16 and len(out) == len(samples)
    assert np.all(np.abs(out / 32768 - clipped) <= 0.5 / 32768 + 1e-7)


@AUDIO
@given(samples=float_audio, from_hz=rates, to_hz=rates)
@example(samples=np.zeros(1600, np.float32), from_hz=math.nan, to_hz=24000)  # hung
@example(samples=np.zeros(1600, np.float32), from_hz=math.inf, to_hz=24000)  # hung
@example(samples=np.zeros(1600, np.float32), from_hz=2**70, to_hz=24000)  # hung
@example(samples=np.zeros(1600, np.float32), from_hz=1, to_hz=16000)  # 25 M samples
@example(samples=np.array([0.5, np.nan], np.float32), from_hz=24000, to_hz=16000)
@example(samples=np.array([0.0, 5.6919033e37], np.float32), from_hz=1000, to_hz=22050)  # NaN
def test_resampling_gives_audio_at_the_new_rate_or_a_clear_error(
    samples: np.ndarray, from_hz: float, to_hz: float
) -> None:
    """A usable rate pair and finite samples: finite float32 audio of the duration it had;
    anything else: AudioInputError, at once."""
    if not (usable(from_hz) and usable(to_hz)) or not np.isfinite(samples).all():
        with pytest.raises(AudioInputError, match="invalid"):
            resample(samples, from_hz, to_hz)  # type: ignore[arg-type]
        return
    out = resample(samples, int(from_hz), int(to_hz))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert abs(len(out) - len(samples) * to_hz / from_hz) <= 1


@AUDIO
@given(
    dtype=st.sampled_from([np.float32, np.int16]),
    to_hz=rates,
    chunks=st.lists(st.tuples(st.integers(0, 3000), rates, st.booleans()), max_size=6),
)
@example(dtype=np.float32, to_hz=16000, chunks=[(1600, math.nan, False)])  # hung
@example(dtype=np.float32, to_hz=10**9, chunks=[(1600, 1, False)])  # bad_alloc
def test_a_stream_resampler_streams_or_refuses_each_chunk_clearly(
    dtype: type, to_hz: float, chunks: list[tuple[int, float, bool]]
) -> None:
    """Each chunk comes out at the target rate (never more than its share: soxr holds the
    filter's length back), or is refused with AudioInputError (a rate no audio has, a NaN
    sample) and leaves the stream as it was."""
    if not usable(to_hz):
        with pytest.raises(AudioInputError):
            StreamResampler(to_hz, dtype)  # type: ignore[arg-type]
        return
    stream = StreamResampler(int(to_hz), dtype)
    rng = np.random.default_rng(len(chunks))
    rate, given, made = 0.0, 0, 0  # since the stream (re)started at ``rate``
    for n, from_hz, broken in chunks:
        samples = (rng.uniform(-0.5, 0.5, n) * (32767 if dtype is np.int16 else 1)).astype(dtype)
        if broken and n and dtype is np.float32:
            samples[n // 2] = np.nan
        if (broken and n and dtype is np.float32) or not usable(from_hz):
            with pytest.raises(AudioInputError):
                stream(samples, from_hz)  # type: ignore[arg-type]
            continue
        out = stream(samples, int(from_hz))
        assert out.dtype == dtype
        if from_hz == to_hz:
            assert out is samples
            continue
        if from_hz != rate:
            rate, given, made = from_hz, 0, 0
        given, made = given + n, made + len(out)
        assert made <= given * to_hz / from_hz + 1
    other_hz = 8000 if to_hz != 8000 else 16000
    with pytest.raises(ValueError, match="even number of bytes"):
        StreamResampler(int(to_hz), np.int16).pcm16(b"\x00\x01\x02", other_hz)


@AUDIO
@given(
    pcm=st.binary(max_size=2000).map(lambda b: b[: len(b) // 2 * 2]),
    rate=rates,
    lead_ms=st.floats(-10, 100) | st.just(math.nan),
    tail_ms=st.floats(0, 100),
)
def test_trimming_keeps_every_loud_sample_or_refuses_clearly(
    pcm: bytes, rate: float, lead_ms: float, tail_ms: float
) -> None:
    """The trimmed audio is one piece of the original holding every sample above the
    silence level; an absurd rate or a negative or NaN silence is refused."""
    if not usable(rate) or not lead_ms >= 0:
        with pytest.raises((AudioInputError, ValueError)):
            trim_pcm16(pcm, rate, lead_ms=lead_ms, tail_ms=tail_ms)  # type: ignore[arg-type]
        return
    out = trim_pcm16(pcm, int(rate), lead_ms=lead_ms, tail_ms=tail_ms)
    assert len(out) % 2 == 0 and out in pcm
    assert loud_samples(out) == loud_samples(pcm)


def loud_samples(pcm: bytes) -> int:
    return int(np.count_nonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) > 328))


def test_a_recording_with_nan_samples_or_an_absurd_rate_is_refused_by_name(
    tmp_path: Path,
) -> None:
    """A float WAV with NaN in it was taken as silent, one whose header says 1 Hz was
    resampled into gigabytes: both are refused with the file's name."""
    nan = tmp_path / "nan.wav"
    audio = np.full(16000, 0.3, np.float32)
    audio[100] = np.nan
    soundfile.write(nan, audio, 16000, subtype="FLOAT")
    with pytest.raises(AudioInputError, match=r"nan\.wav: the audio holds invalid samples"):
        load_audio(nan)
    slow = tmp_path / "slow.wav"
    soundfile.write(slow, np.full(1000, 0.3, np.float32), 1)
    with pytest.raises(AudioInputError, match=r"slow\.wav: invalid sample rate: 1 Hz"):
        load_audio(slow)
