"""Engine threads: calls and loading run on the engine's own thread."""

from __future__ import annotations

import threading

import pytest

from voicegrok.assistant import load_engines
from voicegrok.config import Settings
from voicegrok.engines.llama import LlamaEngine
from voicegrok.threads import EngineThread


def test_run_waits_for_the_result_computed_on_the_engine_thread() -> None:
    thread = EngineThread("llm")
    try:
        assert thread.run(lambda: threading.current_thread().name).startswith("voicegrok-llm")
        with pytest.raises(ZeroDivisionError):
            thread.run(lambda: 1 // 0)
    finally:
        thread.close(wait=True)


def test_the_llm_is_warmed_up_on_the_thread_that_runs_its_turns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """llama.cpp keeps an OpenMP pool per calling thread; a warm-up on another thread
    leaves a second pool behind and slows every later turn by a third."""
    seen: list[str] = []
    warm_up = LlamaEngine.warm_up

    def spy(self: LlamaEngine, messages: object) -> None:
        seen.append(threading.current_thread().name)
        warm_up(self, messages)  # type: ignore[arg-type]

    monkeypatch.setattr(LlamaEngine, "warm_up", spy)
    engines = load_engines(Settings(), stt=False, tts=False)
    try:
        assert seen and all(name.startswith("voicegrok-llm") for name in seen)
    finally:
        engines.close(wait=True)
