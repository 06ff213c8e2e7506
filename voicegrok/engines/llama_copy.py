"""A Q8_0 working copy of a Q4_1 GGUF model, made once in the cache folder.

llama.cpp evaluates several tokens at once (a prompt, a step of many conversations, the
guesses of speculative decoding) with matrix kernels it has for Q8_0 weights and not for
Q4_1: for the default SmolLM2-135M (Q4_1), 16 tokens took 57 ms against 30 ms for its Q8_0
copy on 2 cores, and one token 7.4 ms against 6.9. Q8_0 keeps each Q4_1 weight to within
about a tenth of Q4_1's own rounding step: the answers are as right as the shipped
weights' (``voicegrok bench quality``, greedy: 77 of 100 for both files; 3 questions went
right and 3 wrong, the small model's answers being that sensitive), though not always
word for word. The copy is loaded instead of the source, and is about 1.5 times its size
in memory and on disk (SmolLM2: 98 -> 145 MB), so only models under
:data:`MAX_SOURCE_BYTES` get one. A new copy replaces those of the same file made for
another llama.cpp build or another version of the file.

The copy is named after the source file and the llama.cpp build (path, size and time), so
a changed model or llama.cpp makes a new one. When it cannot be made (a read-only cache, a
full disk), the source is loaded as it is. ``VOICEGROK_LLM_COPY=off`` turns it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..models import cache_dir
from .llama_check import build_key

__all__ = ["MAX_SOURCE_BYTES", "working_copy"]

MAX_SOURCE_BYTES = 1 << 30
"""Bigger models are loaded as they are (their copy would take half as much memory again)."""

_Q4_1 = 3
"""``general.file_type`` of a GGUF whose weights are mostly Q4_1 (LLAMA_FTYPE_MOSTLY_Q4_1)."""

log = logging.getLogger(__name__)


def working_copy(model: Path, *, cache: Path | None = None) -> Path:
    """The file to load for ``model``: its Q8_0 copy if ``model`` is a Q4_1 GGUF under
    :data:`MAX_SOURCE_BYTES` (made now if it is not there yet), else ``model`` itself.
    Never raises: whatever goes wrong here leaves ``model`` to the loader."""
    if os.environ.get("VOICEGROK_LLM_COPY") == "off":
        return model
    try:
        return _copy_of(model, (cache or cache_dir()) / "llm-copies")
    except (OSError, ValueError, TypeError) as e:
        log.warning("using %s as it is: cannot write its Q8_0 copy (%s)", model, e)
        return model


def _copy_of(model: Path, folder: Path) -> Path:
    try:
        st = model.stat()
    except OSError:
        return model  # the loader reports it
    if st.st_size > MAX_SOURCE_BYTES:
        return model
    key = build_key(model, cpu=False, length=16)  # (the quantized bytes do not depend on it)
    target = folder / f"{model.stem}.{key}.q8_0.gguf"
    if target.is_file():
        return target
    verdicts = folder / "not-q4_1.json"
    known: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        kept = json.loads(verdicts.read_text())
        known = [k for k in kept if isinstance(k, str)] if isinstance(kept, list) else []
    if key in known:
        return model
    with _quiet_llama():
        q4_1 = _file_type(model) == _Q4_1
    folder.mkdir(parents=True, exist_ok=True)
    if not q4_1:
        with contextlib.suppress(OSError):  # (only costs a look at the file next time)
            verdicts.write_text(json.dumps([*known, key][-64:]))
        return model
    with _quiet_llama():
        _requantize(model, target)
    # copies of this file for another llama.cpp build or another version of it, and the
    # leftovers of a copy a killed process was writing
    for old in folder.glob(f"{glob.escape(model.stem)}.*.q8_0.gguf"):
        if old != target and len(old.name) == len(target.name):
            old.unlink(missing_ok=True)
    for part in folder.glob("*.part"):
        with contextlib.suppress(OSError):
            if time.time() - part.stat().st_mtime > 3600:
                part.unlink()
    log.info("made a Q8_0 copy of %s for faster prompts: %s", model, target)
    return target


def _file_type(model: Path) -> int | None:
    """``general.file_type`` of a GGUF (None if it cannot be read: the loader reports it)."""
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    loaded = llama_cpp.llama_model_load_from_file(str(model).encode(), params)
    if not loaded:
        return None
    try:
        value = ctypes.create_string_buffer(32)
        if llama_cpp.llama_model_meta_val_str(loaded, b"general.file_type", value, 32) < 0:
            return None
        with contextlib.suppress(ValueError):
            return int(value.value)
        return None
    finally:
        llama_cpp.llama_model_free(loaded)


def _requantize(model: Path, target: Path) -> None:
    """Write ``model``'s weights as Q8_0 to ``target`` (atomically: a copy cut short by a
    crash is never used). Raises OSError when it cannot."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = max(1, min(4, os.cpu_count() or 1))
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.", suffix=".part")
    os.close(fd)
    part = Path(name)
    try:
        code = llama_cpp.llama_model_quantize(str(model).encode(), str(part).encode(), params)
        if code != 0 or not part.is_file():
            raise OSError(f"llama_model_quantize returned {code}")
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_llama() -> Iterator[None]:
    """Nothing from llama.cpp's own log (every tensor converted, a broken file's errors,
    which the loader then reports in one line) unless voicegrok logs at debug level."""
    logger = logging.getLogger("llama-cpp-python")
    before = logger.level
    if not log.isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(before)
