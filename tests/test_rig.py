"""The virtual sound devices the device tests and benches run on (voicegrok.bench.rig)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from voicegrok.bench import rig

pytestmark = pytest.mark.skipif(
    shutil.which("pulseaudio") is None and not os.environ.get("CI"),
    reason="needs PulseAudio (installed by .ci/run: apt-get install pulseaudio pulseaudio-utils)",
)


class _Listener:
    """A program that starts recording from the microphone: each block it gets, and when
    the first came."""

    def __init__(self, audio: rig.VirtualAudio) -> None:
        self.proc = subprocess.Popen(
            [*rig._PAREC, "--device=vg_mic", f"--rate={rig.MIC_RATE_HZ}"],
            env=audio.env,
            stdout=subprocess.PIPE,
        )
        audio.procs.append(self.proc)
        self.blocks: list[bytes] = []
        self.first_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while block := self.proc.stdout.read(640):
            if self.first_at is None:
                self.first_at = time.perf_counter()
            self.blocks.append(block)

    def stop(self) -> npt.NDArray[np.int16]:
        """Stop recording; what it got."""
        self.proc.terminate()
        self._reader.join(10)
        return np.frombuffer(b"".join(self.blocks), dtype="<i2")

    def late_s(self, played_at: float) -> float:
        """How much later than real time puts it a tone played at ``played_at`` is in
        the stream (its position, against the time since the first block came): pipes
        and buffers add tens of milliseconds."""
        heard = self.stop()
        onsets = np.flatnonzero(np.abs(heard) > 3000)
        assert self.first_at is not None and len(onsets), "the tone never reached it"
        return float(onsets[0] / rig.MIC_RATE_HZ - (played_at - self.first_at))


def _player(audio: rig.VirtualAudio) -> subprocess.Popen[bytes]:
    """A program playing what is written to its stdin on the speaker."""
    return subprocess.Popen(
        [
            "pacat",
            "--playback",
            "--device=vg_speaker",
            "--raw",
            "--format=s16le",
            "--channels=1",
            f"--rate={rig.SPEAKER_RATE_HZ}",
            "--latency-msec=20",
        ],
        env=audio.env,
        stdin=subprocess.PIPE,
    )


def _tone(rate_hz: int) -> npt.NDArray[np.float32]:
    t = np.arange(int(0.3 * rate_hz)) / rate_hz
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_the_loopback_hears_the_speaker_at_once_after_nobody_listened(tmp_path: Path) -> None:
    """A loopback started before any program records from the microphone (as the echo
    tests start it before talk): once one does, a sound played is in the microphone where
    real time puts it, not after seconds of what was written while nobody listened (a
    loopback that waited on the microphone then heard talk's greeting late or not at all)."""
    with rig.virtual_audio(tmp_path / "pulse") as audio:
        loop = audio.loopback()
        try:
            time.sleep(3.0)  # nobody records meanwhile (a FIFO holds 2 s)
            listener = _Listener(audio)
            player = _player(audio)
            assert player.stdin is not None
            time.sleep(1.0)  # (the player connected meanwhile: it plays what it gets at once)
            played_at = time.perf_counter()
            player.stdin.write(rig.pcm16(_tone(rig.SPEAKER_RATE_HZ)))
            player.stdin.close()
            player.wait(10)
            time.sleep(1.0)
        finally:
            loop.terminate()
            loop.wait(10)
        late_s = listener.late_s(played_at)
    assert abs(late_s) < 0.4, late_s


def test_the_microphone_says_things_at_once_after_nobody_listened(tmp_path: Path) -> None:
    """The same for the microphone's writer of silence (the device tests feed it while talk
    starts): it wrote 3 s of silence ahead of what it said next."""
    with rig.virtual_audio(tmp_path / "pulse") as audio:
        mic = audio.microphone()
        try:
            time.sleep(3.0)
            listener = _Listener(audio)
            time.sleep(1.0)
            played_at = mic.say(_tone(rig.MIC_RATE_HZ), 0)  # (when its first sample was due)
            time.sleep(1.0)
        finally:
            mic.close()
        late_s = listener.late_s(played_at)
    assert abs(late_s) < 0.4, late_s


def _frames(listener: _Listener) -> npt.NDArray[np.float64]:
    """RMS (16-bit) of each 10 ms frame the listener got, from its 200th ms on."""
    heard = listener.stop().astype(np.float64)
    frames = heard[len(heard) % 160 :].reshape(-1, 160)[20:]
    assert len(frames) > 50, "the microphone gave less than half a second"
    return np.asarray(np.sqrt(np.mean(frames**2, axis=1)))


@pytest.mark.parametrize("writer", ["microphone", "loopback", "speak"])
def test_the_microphone_hears_its_own_noise_and_never_digital_silence(
    tmp_path: Path, writer: str
) -> None:
    """A real microphone is never digitally silent, and the echo canceller takes digital
    silence as a muted microphone, no evidence of the speaker's echo (the device tests'
    headset, given zeros, was never found to be one). Whoever writes it, it hears a quiet
    room's noise at about -70 dBFS under the rest."""
    with rig.virtual_audio(tmp_path / "pulse") as audio:
        listener = _Listener(audio)
        if writer == "microphone":
            mic = audio.microphone()
            time.sleep(1.5)
            mic.close()
        elif writer == "loopback":
            loop = audio.loopback()
            player = _player(audio)  # the speaker plays digital silence meanwhile
            assert player.stdin is not None
            player.stdin.write(bytes(3 * rig.SPEAKER_RATE_HZ))  # 1.5 s
            player.stdin.close()
            player.wait(10)
            loop.terminate()
            loop.wait(10)
        else:
            audio.speak(1.5)
        rms = _frames(listener)
    assert (rms > 0.5 * rig.NOISE_RMS).all() and (rms < 2 * rig.NOISE_RMS).all(), rms
