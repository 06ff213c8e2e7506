"""One frozen configuration for a voicegrok process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .conversation import DEFAULT_SYSTEM_PROMPT

__all__ = ["Settings"]


def _cores() -> int:
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


@dataclass(frozen=True)
class Settings:
    stt_model: str | None = None
    """Path or catalog name; None for the embedded default."""
    llm_model: str | None = None
    """GGUF path or catalog name; with ``llm_url``, the name of the server's model (None:
    the first it lists)."""
    llm_url: str | None = None
    """An OpenAI-compatible server that answers instead of a local GGUF."""
    llm_api_key: str | None = None
    """The server's key (None: ``$VOICEGROK_LLM_API_KEY``, or no key)."""
    voice: str | None = None
    turn_model: str | None = None
    """The end-of-turn model heard at each pause: a path or catalog name, ``none`` (the
    pause and the words decide alone), or None for the embedded Smart Turn."""
    threads: int = field(default_factory=_cores)
    """CPU threads for the LLM."""
    stt_threads: int = field(default_factory=_cores)
    """Speech-to-text threads: every core. The transcription that ends a turn is on the
    critical path while nothing else runs (the LLM waits for its text); on 2 cores tiny.en
    transcribes a question faster than on one thread. (One thread was faster while NumPy's
    OpenBLAS helper spun a core after each transcription; it is kept to one thread now, see
    ``load_engines``.)"""
    tts_threads: int = 1
    """Piper threads: one, so the LLM keeps decoding on the other while speech is made (a
    2-thread voice with the LLM paused for every clause was slower overall)."""
    tts_urgent_threads: int = field(default_factory=_cores)
    """Piper threads for the first clause of an answer, while the LLM pauses (the person is
    waiting for that sound; the LLM's next words are not needed before it is heard)."""
    draft: str | None = None
    """Speculative decoding's guesser: ``lookup`` (the default: n-grams of the
    conversation), ``none``, or a smaller LLM of the same vocabulary (catalog name or
    path) that drafts for the LLM."""
    n_ctx: int = 2048
    max_tokens: int = 400
    temperature: float = 0.3
    seed: int = 0
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    beam_size: int = 1
    language: str | None = "en"
    first_clause_words: int = 1
    """The first clause of an answer is cut at a comma once it has this many words ("Sure,"
    is spoken while the rest is written); a long first sentence with no comma is cut before
    a joining word ("I'd be delighted | to help")."""
    tools: bool = True
    """The built-in tools (clock, timers, calculator, units) answer the requests that
    plainly ask for them."""
    tts_lead_s: float = 0.5
    """Live playback, while the LLM is writing: a clause is synthesized when the speaker
    would run out of audio within this margin plus the clause's expected synthesis time
    (so the LLM keeps both cores most of the time)."""
