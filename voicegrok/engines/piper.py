"""Piper text-to-speech (ONNX voices)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ModelError, first_line
from ..models import piper_config_path
from ..threads import CoreShare
from .onnx import cpu_session

__all__ = ["PiperEngine"]

_WARM_TEXT = "Sure, here is what I found for you."
"""A first clause of the usual length (the clause splitter lets out at most 8 words)."""


class PiperEngine:
    """Blocking synthesis: one PCM chunk per sentence, produced lazily.

    An ``urgent`` synthesis (the first clause of an answer, which the person is waiting
    for) runs on a second session with ``urgent_threads`` threads while the LLM pauses
    (:meth:`CoreShare.exclusive`): on 2 cores a short clause is ready sooner than on one
    thread. Later clauses use ``threads`` next to the LLM, which keeps writing on the other core.

    With ``second_voice`` (a server answering many conversations, whose TTS thread runs two
    syntheses at once), a first clause that finds the voice busy is synthesized on a second
    session beside it, on one thread, the LLM pausing meanwhile as for an urgent clause:
    when 20 answers begin together, their first clauses no longer wait for each other one
    at a time while the LLM writes on (``voicegrok bench server``, 20 sessions, same hour:
    first audio p50 1.13 s and p90 1.80 s, median of 5 runs, against 1.42 and 2.39 s over
    8 runs before; the LLM wrote as fast). The second session takes about 77 MB.

    Reproducible: VITS samples noise inside its graph, from generators onnxruntime seeds
    when the session is made; seeding them with ``seed`` makes a process speak the same
    texts the same way (``voicegrok say`` gives the same WAV every time).
    """

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 1,
        urgent_threads: int = 1,
        length_scale: float | None = None,
        cores: CoreShare | None = None,
        seed: int = 0,
        second_voice: bool = False,
    ) -> None:
        from piper import PiperConfig, PiperVoice, SynthesisConfig

        config_path = piper_config_path(model_path)
        if config_path is None:
            raise ModelError(f"{model_path}: no voice config {model_path.name}.json beside it")
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(
                f"{config_path}: not a valid Piper voice config ({first_line(e)}); "
                "pass --voice a Piper .onnx whose .onnx.json is beside it"
            ) from None
        import onnxruntime

        onnxruntime.set_seed(seed)

        def voice(n: int) -> Any:
            session = cpu_session(
                model_path,
                threads=n,
                what="Piper voice",
                fix="pass --voice a valid Piper .onnx file",
                shrinkable=True,
            )
            return PiperVoice(config=config, session=session)

        self._voice = voice(threads)
        self._urgent_voice = voice(urgent_threads) if urgent_threads > threads else self._voice
        self._second_voice = voice(1) if second_voice else None
        self._second_lock = threading.Lock()
        self._syn = SynthesisConfig(length_scale=length_scale)
        self.sample_rate_hz: int = int(config.sample_rate)
        self.path = model_path
        self._lock = threading.Lock()
        self._cores = cores or CoreShare(1)

    def _voices(self, *, second: bool) -> list[Any]:
        """The distinct sessions (the urgent voice may be the plain one), with the second
        voice or without."""
        voices = (self._voice, self._urgent_voice, self._second_voice if second else None)
        return list({id(v): v for v in voices if v is not None}.values())

    def warm_up(self) -> None:
        """Once, after loading (blocking): each voice's first synthesis allocates."""
        with self._lock:
            for voice in self._voices(second=True):
                for _ in voice.synthesize("Ready.", syn_config=self._syn):
                    pass

    def rest(self) -> None:
        """Between turns (blocking): the voices give back the memory their longest clauses
        took, then the voice of first clauses takes again what a usual first clause needs
        (given back too, that clause took 20 ms longer to synthesize: it is the one
        a person waits for). What stays held between turns no longer grows with the
        longest clause ever spoken."""
        with self._lock, self._cores.working():  # a core, as any synthesis takes
            # (the second voice only ever speaks first clauses)
            for voice in self._voices(second=False):
                voice.session.shrink_next = True
                for _ in voice.synthesize("Ok.", syn_config=self._syn):
                    pass
            for _ in self._urgent_voice.synthesize(_WARM_TEXT, syn_config=self._syn):
                pass

    def synthesize(self, text: str, *, urgent: bool = False) -> Iterator[bytes]:
        many = self._cores.serving_many()
        lock = self._lock
        if urgent and self._urgent_voice is not self._voice and not many:
            voice, share = self._urgent_voice, self._cores.exclusive()
        elif urgent and self._second_voice is not None and many and self._lock.locked():
            voice, lock, share = self._second_voice, self._second_lock, self._cores.exclusive()
        else:
            voice, share = self._voice, self._cores.working()
        with lock, share:
            for chunk in voice.synthesize(text, syn_config=self._syn):
                yield chunk.audio_int16_bytes
