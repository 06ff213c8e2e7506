"""The virtual sound devices the device tests and benches run on (voicegrok.bench.rig)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from voicegrok.bench import rig

pytestmark = pytest.mark.skipif(
    shutil.which("pulseaudio") is None and not os.environ.get("CI"),
    reason="needs PulseAudio (installed by .ci/run: apt-get install pulseaudio pulseaudio-utils)",
)


def test_the_loopback_hears_the_speaker_at_once_after_nobody_listened(tmp_path: Path) -> None:
    """A loopback started before any program records from the microphone (as the echo
    tests start it before talk): once one does, a sound played is in the microphone where
    real time puts it, not after seconds of what was written while nobody listened (a
    loopback that waited on the microphone then heard talk's greeting late or not at all)."""
    with rig.virtual_audio(tmp_path / "pulse") as audio:
        loop = audio.loopback()
        try:
            time.sleep(3.0)  # nobody records meanwhile (a FIFO holds 2 s)
            mic = subprocess.Popen(
                [*rig._PAREC, "--device=vg_mic", f"--rate={rig.MIC_RATE_HZ}"],
                env=audio.env,
                stdout=subprocess.PIPE,
            )
            audio.procs.append(mic)
            assert mic.stdout is not None
            blocks: list[bytes] = []
            first: list[float] = []

            def read() -> None:
                assert mic.stdout is not None
                while block := mic.stdout.read(640):
                    if not first:
                        first.append(time.perf_counter())
                    blocks.append(block)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            t = np.arange(int(0.3 * rig.SPEAKER_RATE_HZ)) / rig.SPEAKER_RATE_HZ
            tone = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
            player = subprocess.Popen(
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
            assert player.stdin is not None
            time.sleep(1.0)  # (the player connected meanwhile: it plays what it gets at once)
            played_at = time.perf_counter()
            player.stdin.write(tone)
            player.stdin.close()
            player.wait(10)
            time.sleep(1.0)
        finally:
            loop.terminate()
            loop.wait(10)
        mic.terminate()
        reader.join(10)
    heard = np.frombuffer(b"".join(blocks), dtype="<i2")
    onsets = np.flatnonzero(np.abs(heard) > 3000)
    assert first and len(onsets), "the tone never reached the microphone"
    # where the tone is in the microphone's stream, against when it was played after the
    # stream's first block came (pipes and buffers add tens of milliseconds, not seconds)
    late_s = onsets[0] / rig.MIC_RATE_HZ - (played_at - first[0])
    assert abs(late_s) < 0.4, late_s
