"""Virtual sound devices in a private PulseAudio daemon, for the benches and the device tests.

The microphone is a pipe source that this process writes into at real-time pace; the
speaker is a null sink whose monitor ``parec`` records. Every program started with
:attr:`VirtualAudio.env` sees them as the default devices (PortAudio through ALSA's pulse
plugin), and nothing of the machine's own sound setup is touched.
"""

from __future__ import annotations

import array
import bisect
import contextlib
import fcntl
import os
import queue
import shutil
import subprocess
import termios
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile

from ..audio import FloatAudio, load_audio
from ..errors import VoicegrokError

__all__ = [
    "MIC_RATE_HZ",
    "SPEAKER_RATE_HZ",
    "Loopback",
    "Microphone",
    "Recording",
    "VirtualAudio",
    "missing",
    "virtual_audio",
]

MIC_RATE_HZ = 16000
"""Sample rate of the pipe source (the microphone)."""
SPEAKER_RATE_HZ = 22050
"""Sample rate of the null sink (the speaker) and of its recordings."""
CHUNK_S = 0.02
"""What the microphone is fed at a time, in seconds."""
_VOICED = 328
"""Peak (16-bit) above which a block of what ``speak`` says has voice in it (-40 dBFS)."""
_UNREAD_MAX = 1280
"""Bytes in the microphone's FIFO (40 ms) from which its writers take it that nobody
records (see :func:`_nobody_records`)."""
NOISE_RMS = 10.0
"""The rig's microphone hears its own noise under everything, as a real one does: RMS 10
(16-bit, -70 dBFS). Digital silence is what a muted microphone gives, and the echo
canceller takes it as no evidence of the speaker's echo (with none, it never took the
speaker for a headset, and never let the person talk over an answer)."""
_PAREC = ("parec", "--channels=1", "--format=s16le", "--raw", "--latency-msec=20")


def missing() -> str | None:
    """Why the virtual devices cannot be made here (None: they can)."""
    absent = [p for p in ("pulseaudio", "parec") if shutil.which(p) is None]
    if absent:
        return (
            f"{' and '.join(absent)} not installed "
            "(Debian: apt-get install pulseaudio pulseaudio-utils)"
        )
    return None


def pcm16(audio: FloatAudio) -> bytes:
    """Float samples as 16-bit little-endian PCM."""
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


class _Noise:
    """Adds the microphone's own noise (:data:`NOISE_RMS`) to 16-bit samples."""

    def __init__(self) -> None:
        self._rng = np.random.default_rng()

    def __call__(self, samples: npt.NDArray[Any]) -> bytes:
        noisy = samples + self._rng.normal(0.0, NOISE_RMS, len(samples))
        return np.clip(np.round(noisy), -32768, 32767).astype("<i2").tobytes()

    def pcm(self, pcm: bytes) -> bytes:
        return self(np.frombuffer(pcm, dtype="<i2"))


class _Pace:
    """Sleeps so that the samples counted go out at real-time pace from the first one."""

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self.start_s = time.perf_counter()
        self.sent = 0

    def wait(self, samples: int) -> None:
        self.sent += samples
        delay = self.start_s + self.sent / self.rate_hz - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def _nobody_records(fifo_fd: int) -> bool:
    """Whether the microphone's FIFO still holds 40 ms: while a program records from it,
    PulseAudio empties it as soon as it is written; while none does, it is not read at all,
    and what its writers add is dropped (sound nobody records is lost, as in a room)."""
    unread = array.array("i", [0])
    fcntl.ioctl(fifo_fd, termios.FIONREAD, unread)
    return unread[0] >= _UNREAD_MAX


class Loopback(threading.Thread):
    """Writes the speaker's sound into the microphone, 20 ms at a time as it is played,
    plus whatever the person says meanwhile (one writer: a FIFO does not mix)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        fifo: Path,
        mix: queue.Queue[bytes],
        gain: float = 1.0,
    ) -> None:
        super().__init__(daemon=True)
        self.proc, self.fifo, self.mix, self.gain = proc, fifo, mix, gain
        self.voiced_at: list[float] = []
        """When (``perf_counter``) each block with voiced samples of what ``speak`` said
        went into the microphone."""

    def run(self) -> None:
        """Never waits on the microphone: while no program records from it, PulseAudio
        does not read the FIFO, and a blocking writer stopped reading ``parec`` with it.
        ``talk`` started under load then heard its greeting's echo seconds late or not at
        all, took the speaker for a headset, and its first answer's echo came through raw
        (the loopback test failed 7 runs of 11 with two CPU hogs). Sound nobody records is
        lost (:func:`_nobody_records`), so a program that starts recording gets little of
        what came before it."""
        assert self.proc.stdout is not None
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        noise = _Noise()
        try:
            while block := self.proc.stdout.read(640):
                echo = (np.frombuffer(block, dtype="<i2") * self.gain).astype(np.int32)
                try:
                    voice = np.frombuffer(self.mix.get_nowait(), dtype="<i2")
                    echo[: len(voice)] += voice[: len(echo)]
                except queue.Empty:
                    voice = None
                if _nobody_records(fd):
                    continue
                try:  # (640 bytes: written whole or not at all)
                    os.write(fd, noise(echo))
                except BlockingIOError:
                    continue
                if voice is not None and np.abs(voice).max(initial=0) > _VOICED:
                    self.voiced_at.append(time.perf_counter())
        finally:
            os.close(fd)

    def terminate(self) -> None:
        self.proc.terminate()

    def wait(self, timeout: float) -> None:
        self.proc.wait(timeout)
        self.join(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Microphone(threading.Thread):
    """The microphone's one writer for as long as it runs: its own noise (:data:`NOISE_RMS`)
    at real-time pace, and the recordings :meth:`say` queues, in turn (a quiet room where
    someone speaks now and then). Start it, and :meth:`close` it when done."""

    def __init__(self, fifo: Path) -> None:
        super().__init__(daemon=True)
        self.fifo = fifo
        self._queue: queue.Queue[tuple[bytes, int, queue.Queue[float]]] = queue.Queue()
        self._closing = threading.Event()
        self.error: BaseException | None = None

    def say(self, audio: FloatAudio, voiced_until: int, timeout_s: float = 120) -> float:
        """Speak ``audio`` (16 kHz) into the microphone at real-time pace after what is
        queued; returns once it has been written, with the moment (``perf_counter``) its
        sample ``voiced_until`` was due: the end of the words."""
        done: queue.Queue[float] = queue.Queue()
        self._queue.put((pcm16(audio), voiced_until, done))
        try:
            return done.get(timeout=timeout_s)
        except queue.Empty:
            raise VoicegrokError(
                f"the virtual microphone took over {timeout_s:g} s to say "
                f"{len(audio) / MIC_RATE_HZ:.1f} s ({self.error or 'stuck'})"
            ) from None

    def run(self) -> None:
        chunk = int(MIC_RATE_HZ * CHUNK_S) * 2
        silence, noise = bytes(chunk), _Noise()
        try:
            with self.fifo.open("wb", buffering=0) as f:
                pace = _Pace(MIC_RATE_HZ)
                while not self._closing.is_set():
                    try:
                        pcm, voiced_until, done = self._queue.get_nowait()
                    except queue.Empty:
                        if not _nobody_records(f.fileno()):
                            f.write(noise.pcm(silence))
                        pace.wait(chunk // 2)
                        continue
                    due = None
                    for i in range(0, len(pcm), chunk):
                        block = pcm[i : i + chunk]
                        f.write(noise.pcm(block))
                        if due is None and i // 2 + len(block) // 2 > voiced_until:
                            due = time.perf_counter() + (voiced_until - i // 2) / MIC_RATE_HZ
                        pace.wait(len(block) // 2)
                    done.put(due if due is not None else time.perf_counter())
        except OSError as e:  # the daemon went away
            self.error = e

    def close(self) -> None:
        self._closing.set()
        self.join(5)


class Recording:
    """What the speaker plays, recorded by ``parec`` from the null sink's monitor as 16-bit
    mono at :data:`SPEAKER_RATE_HZ`, with a clock: where each sample falls in
    ``perf_counter`` time."""

    RATE = SPEAKER_RATE_HZ

    def __init__(self, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*_PAREC, "--device=vg_speaker.monitor", f"--rate={self.RATE}"],
            env=dict(env),
            stdout=subprocess.PIPE,
        )
        self._data = bytearray()
        self._lock = threading.Lock()
        self._arrived: list[float] = []
        """When each block arrived (in order)..."""
        self._starts: list[float] = []
        """... and when sample 0 played if that block came at once."""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while block := os.read(fd, 8192):
            now = time.perf_counter()
            with self._lock:
                self._data += block
                self._arrived.append(now)
                self._starts.append(now - len(self._data) // 2 / self.RATE)

    def audio(self, t0: float = 0.0, t1: float | None = None) -> FloatAudio:
        """The recording so far, or its part from ``t0`` to ``t1`` (seconds)."""
        first = max(0, int(t0 * self.RATE))
        with self._lock:
            last = len(self._data) // 2 if t1 is None else max(first, int(t1 * self.RATE))
            data = bytes(self._data[first * 2 : last * 2])
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768)

    def now_s(self) -> float:
        """Position of the sound the speaker is playing now, in the recording."""
        with self._lock:
            return len(self._data) / 2 / self.RATE

    def _start_s(self, near_s: float) -> float:
        """When sample 0 played, judged from the blocks that arrived within 5 s of
        ``near_s`` (all of them if none did). A block arrives after its last sample was
        played, so each bounds that moment from above; the least delayed block gives it.
        (Judged near the time asked about: a stall that lost samples shifts it.)"""
        with self._lock:
            lo = bisect.bisect_left(self._arrived, near_s - 5)
            hi = bisect.bisect_right(self._arrived, near_s + 5)
            return min(self._starts[lo:hi] or self._starts or [near_s])

    def time_of(self, position_s: float) -> float:
        """When (``perf_counter``) the sound at ``position_s`` in the recording played."""
        start = self._start_s(time.perf_counter())
        return self._start_s(start + position_s) + position_s

    def position_of(self, t_s: float) -> float:
        """Where in the recording the sound played at ``t_s`` (``perf_counter``) is."""
        return t_s - self._start_s(t_s)

    def loudness(self, t0: float, t1: float) -> float:
        seg = self.audio(t0, t1)
        return float(np.sqrt(np.mean(seg**2))) if len(seg) else 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def save_wav(self, path: Path) -> Path:
        soundfile.write(str(path), self.audio(), self.RATE)
        return path


@dataclass
class VirtualAudio:
    """A running private PulseAudio daemon (see :func:`virtual_audio`)."""

    env: dict[str, str]
    """The environment in which programs use these devices (``PULSE_SERVER``...)."""
    fifo: Path
    """The microphone: what is written here is heard (16-bit mono at 16 kHz)."""
    folder: Path
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    """Processes killed when the daemon stops, however the run ends (a failed test must
    not leave an LLM running that slows everything after it)."""
    recordings: list[Recording] = field(default_factory=list)
    """Stopped with the daemon too."""
    mix: queue.Queue[bytes] | None = None
    """While a loopback runs, what ``speak`` says goes here, to be mixed with the echo."""

    def speak(
        self, *parts: str | float, rate: int = MIC_RATE_HZ, stop: threading.Event | None = None
    ) -> None:
        """Write recordings (paths) and silences (seconds) into the microphone in real time,
        over its own noise."""
        chunk = rate // 50
        pace = _Pace(rate)
        mix, noise = self.mix, _Noise()
        with contextlib.nullcontext(None) if mix else self.fifo.open("wb", buffering=0) as f:
            for part in parts:
                audio = (
                    np.zeros(int(part * rate), dtype=np.float32)
                    if isinstance(part, float)
                    else load_audio(part, rate)
                )
                pcm = pcm16(audio)
                for i in range(0, len(pcm), chunk * 2):
                    if stop is not None and stop.is_set():
                        return
                    if mix is not None:
                        assert rate == MIC_RATE_HZ, "the loopback mixes at 16 kHz"
                        mix.put(pcm[i : i + chunk * 2])
                    else:
                        assert f is not None
                        f.write(noise.pcm(pcm[i : i + chunk * 2]))
                    pace.wait(chunk)

    def microphone(self) -> Microphone:
        """A started :class:`Microphone`: silence from now on, until it is closed."""
        mic = Microphone(self.fifo)
        mic.start()
        return mic

    def loopback(self, gain: float = 1.0) -> Loopback:
        """Feed what the speaker plays back into the microphone, at ``gain`` times its level
        (0.25: -12 dB, as a laptop's speaker and microphone), in real time, mixed with what
        ``speak`` says: a loudspeaker next to the microphone."""
        cmd = [*_PAREC, "--device=vg_speaker.monitor", f"--rate={MIC_RATE_HZ}"]
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE)
        self.procs.append(proc)
        self.mix = queue.Queue()
        loop = Loopback(proc, self.fifo, self.mix, gain)
        loop.start()
        return loop

    def record(self) -> Recording:
        """Start recording what the speaker plays."""
        rec = Recording(self.env)
        self.recordings.append(rec)
        return rec


@contextlib.contextmanager
def virtual_audio(folder: Path, env: Mapping[str, str] | None = None) -> Iterator[VirtualAudio]:
    """A private PulseAudio daemon with its socket, state and config in ``folder`` (made if
    needed); ``env`` (default: this process's) plus its variables is
    :attr:`VirtualAudio.env`. On the way out every process in :attr:`VirtualAudio.procs` is
    killed, then the daemon."""
    if reason := missing():
        raise VoicegrokError(reason)
    folder.mkdir(parents=True, exist_ok=True)
    fifo = folder / "mic.fifo"
    socket = folder / "native"
    (folder / "default.pa").write_text(
        f"load-module module-null-sink sink_name=vg_speaker rate={SPEAKER_RATE_HZ} channels=1\n"
        f"load-module module-pipe-source source_name=vg_mic file={fifo} format=s16le "
        f"rate={MIC_RATE_HZ} channels=1\n"
        "set-default-sink vg_speaker\nset-default-source vg_mic\n"
        f"load-module module-native-protocol-unix auth-anonymous=1 socket={socket}\n"
    )
    run_env = dict(
        os.environ if env is None else env,
        PULSE_SERVER=f"unix:{socket}",
        HOME=str(folder),
        XDG_RUNTIME_DIR=str(folder),
    )
    daemon = subprocess.Popen(
        [
            "pulseaudio",
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--system=false",
            "--disallow-exit",
            "-F",
            str(folder / "default.pa"),
            "--log-target=stderr",
        ],
        env=run_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    audio = VirtualAudio(run_env, fifo, folder)
    try:
        for _ in range(200):
            if socket.exists() and fifo.exists():
                break
            if daemon.poll() is not None:
                raise VoicegrokError(f"PulseAudio exited at start (code {daemon.returncode})")
            time.sleep(0.05)
        else:
            raise VoicegrokError("PulseAudio did not start in 10 s")
        yield audio
    finally:
        for rec in audio.recordings:
            rec.stop()
        for proc in audio.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=30)
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(10)
