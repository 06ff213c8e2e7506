"""Loading the engines: every model resolved first, then each loaded and warmed up on the
thread that will run it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import models
from .config import Settings
from .conversation import Conversation
from .engines import (
    ChatModel,
    SpeechToText,
    TextToSpeech,
    TurnDetector,
    VoiceActivity,
    WordsDetector,
)
from .errors import ModelError
from .threads import CoreShare, EngineThread
from .tools import Tool

if TYPE_CHECKING:
    from .choice import Choice
    from .engines.llama import LlamaEngine
    from .engines.speculative import Drafter

__all__ = ["Engines", "load_engines"]

log = logging.getLogger(__name__)


@dataclass
class Engines:
    """The loaded models, each with the one thread that runs it (shared by conversations)."""

    stt: SpeechToText | None = None
    llm: ChatModel | None = None
    tts: TextToSpeech | None = None
    vad: VoiceActivity | None = None
    turn: TurnDetector | None = None
    """The end-of-turn model, heard at each pause (None: the pause and words decide)."""
    words: WordsDetector | None = None
    """The model of the words, read where the end-of-turn model leaves doubt (None: not
    read)."""
    cores: CoreShare | None = None
    """How the LLM and speech synthesis share the CPU (None: not shared, as with fakes)."""
    tools: list[Tool] = field(default_factory=list)
    """Tools of MCP servers, connected once and shared (see :mod:`.adapters.mcp`)."""
    load_s: dict[str, float] = field(default_factory=dict)
    """Seconds each engine took to load and warm up."""
    llm_choice: Choice | None = None
    """The local LLM, and why it was chosen."""
    threads: dict[str, EngineThread] = field(
        default_factory=lambda: {
            k: EngineThread(k) for k in ("stt", "stt-partial", "llm", "tts", "vad", "turn")
        }
    )

    def between_turns(self) -> None:
        """Housekeeping once a turn has been heard (blocking: run it off the event loop).
        The engines that can give back the memory their longest inputs took do so (the
        voice), then the process gives its freed memory back to the system; without it
        a conversation of an hour held 100 MB more at its end than after its first
        minutes."""
        from .adapters.heap import release_free_memory

        rest = getattr(self.tts, "rest", None)
        if callable(rest):
            rest()
        release_free_memory()

    def close(self, *, wait: bool = False) -> None:
        """Stop the engine threads (``wait``: until their work in progress is over)."""
        for t in self.threads.values():
            t.close(wait=wait)
        close = getattr(self.llm, "close", None)
        if callable(close):
            close()  # the batching engine's scheduler thread


def load_engines(
    settings: Settings,
    *,
    stt: bool = True,
    llm: bool = True,
    tts: bool = True,
    vad: bool = False,
    sessions: int = 1,
    progress: Callable[[str], None] | None = None,
) -> Engines:
    """Resolve, load and warm up the requested engines (blocking; seconds, not minutes).
    ``sessions``: conversations answered at once (more than one: a local LLM batches them,
    see :mod:`.engines.llama_batch`).

    Raises :class:`~voicegrok.errors.ModelError` with a one-line message on any model problem.
    """
    _one_blas_thread()
    from .adapters.heap import unpool_large_blocks

    unpool_large_blocks()  # before the engines allocate: see its module
    # Resolve every path first: a wrong --voice fails at once, not after the LLM has loaded.
    paths = {
        kind: models.resolve(kind, spec)
        for kind, spec, wanted in (
            ("stt", settings.stt_model, stt),
            ("tts", settings.voice, tts),
            ("vad", None, vad),
            ("turn", settings.turn_model, vad and settings.turn_model != "none"),
        )
        if wanted
    }
    cores = CoreShare(settings.threads)
    engines = Engines(cores=cores)
    say = progress or (lambda _msg: None)
    if llm and not settings.llm_url:
        from .choice import choose_llm

        # by name, or the best this machine runs fast enough (measured once)
        engines.llm_choice = choose_llm(settings.llm_model, settings.threads, progress=say)
        if engines.llm_choice.reason != "chosen by name":
            say(f"LLM {engines.llm_choice.name}: {engines.llm_choice.reason}")
        paths["llm"] = engines.llm_choice.path
    if "stt" in paths:
        from .engines.whisper import WhisperEngine

        say(f"loading speech-to-text {paths['stt']}")
        t = time.perf_counter()

        def load_whisper() -> WhisperEngine:
            whisper = WhisperEngine(
                paths["stt"],
                threads=settings.stt_threads,
                beam_size=settings.beam_size,
                language=settings.language,
                cores=cores,
            )
            whisper.transcribe(np.zeros(8000, dtype=np.float32))  # first call allocates buffers
            return whisper

        engines.stt = engines.threads["stt"].run(load_whisper)
        engines.load_s["stt"] = time.perf_counter() - t
    if llm and settings.llm_url:
        from .engines.remote_llm import RemoteChatModel

        say(f"connecting to the LLM server {settings.llm_url}")
        t = time.perf_counter()
        engines.llm = engines.threads["llm"].run(
            lambda: RemoteChatModel(
                settings.llm_url or "",
                model=settings.llm_model,
                api_key=settings.llm_api_key,
                n_ctx=settings.n_ctx,
                seed=settings.seed,
            )
        )
        engines.load_s["llm"] = time.perf_counter() - t
    elif "llm" in paths:
        from .engines.llama import LlamaEngine
        from .engines.llama_batch import BatchedLlamaEngine

        say(f"loading LLM {paths['llm']}")
        t = time.perf_counter()

        def load_llama() -> LlamaEngine | BatchedLlamaEngine:
            n_ctx, threads, seed = settings.n_ctx, settings.threads, settings.seed
            if sessions > 1:
                llama: LlamaEngine | BatchedLlamaEngine = BatchedLlamaEngine(
                    paths["llm"],
                    slots=sessions,
                    cores=cores,
                    n_ctx=n_ctx,
                    threads=threads,
                    seed=seed,
                )
            else:
                llama = LlamaEngine(
                    paths["llm"], cores=cores, n_ctx=n_ctx, threads=threads, seed=seed
                )
                llama.drafter = drafter(settings, llama)
            # Puts the system prompt in the KV cache: the first turn only evaluates its question.
            llama.warm_up(Conversation(settings.system_prompt).messages())
            return llama

        engines.llm = engines.threads["llm"].run(load_llama)
        engines.load_s["llm"] = time.perf_counter() - t
    if "tts" in paths:
        from .engines.piper import PiperEngine

        say(f"loading voice {paths['tts']}")
        t = time.perf_counter()

        second_voice = sessions > 1 and not settings.llm_url  # (a batching LLM here)
        if second_voice:  # first clauses two at a time (see PiperEngine)
            engines.threads["tts"].close()
            engines.threads["tts"] = EngineThread("tts", workers=2)

        def load_piper() -> PiperEngine:
            piper = PiperEngine(
                paths["tts"],
                threads=settings.tts_threads,
                urgent_threads=settings.tts_urgent_threads,
                cores=cores,
                seed=settings.seed,
                second_voice=second_voice,
            )
            piper.warm_up()
            return piper

        engines.tts = engines.threads["tts"].run(load_piper)
        engines.load_s["tts"] = time.perf_counter() - t
    if "vad" in paths:
        from .engines.silero import SileroVAD

        t = time.perf_counter()
        engines.vad = SileroVAD(paths["vad"])
        engines.load_s["vad"] = time.perf_counter() - t
    if "turn" in paths:
        from .engines.smart_turn import SmartTurn

        t = time.perf_counter()
        engines.turn = engines.threads["turn"].run(lambda: SmartTurn(paths["turn"]))
        engines.words = engines.threads["turn"].run(_words_model)
        engines.load_s["turn"] = time.perf_counter() - t
    return engines


def _words_model() -> WordsDetector | None:
    """The embedded SmolLM2 reading the words at a pause (see :mod:`.engines.text_turn`);
    None where it is not installed (the voice and the pause decide, as before)."""
    from .engines.text_turn import TextTurn

    try:
        return TextTurn(models.resolve("llm"))
    except (ModelError, ValueError) as e:
        log.warning("the words are not read at a pause: %s", e)
        return None


def _one_blas_thread() -> None:
    """NumPy's OpenBLAS runs on one thread in a voicegrok process.

    With its default of one thread per core, every small matrix product (whisper's mel
    filter bank, a few milliseconds) wakes a second OpenBLAS thread that then spins about
    a tenth of a second waiting for more work: each transcription burned a second core, and
    two at once (a partial and the end of a turn) slowed each other down. The engines have
    thread counts of their own; NumPy's work here is too small to share.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def drafter(settings: Settings, engine: LlamaEngine) -> Drafter | None:
    """The guesser of ``settings.draft`` for speculative decoding with ``engine`` (see
    :mod:`.engines.speculative`): prompt lookup (the default), none, or a smaller model of
    the same vocabulary, by catalog name or path (a ModelError if it is not one)."""
    from .engines.llama import load_llama
    from .engines.speculative import DraftModel, PromptLookup

    spec = settings.draft
    if spec == "none":
        return None
    if spec in (None, "", "lookup"):
        return PromptLookup()
    path = models.resolve("llm", spec)
    small = DraftModel(
        load_llama(path, n_ctx=settings.n_ctx, threads=settings.threads, seed=settings.seed)
    )
    small.check_vocabulary(engine.llama, str(spec))
    return small
