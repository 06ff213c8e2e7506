"""Will llama.cpp survive this CPU? A one-time check in a child process, cached.

Some virtual machines advertise AMX (``amx_tile`` in /proc/cpuinfo, XCR0 enabling it) yet
fault on its first instruction: a llama.cpp built with native CPU flags then dies with
``Illegal instruction`` on the first prompt longer than one token, taking the whole
process with it. The AMX kernels (and the weight repacking) live in llama.cpp's "extra
buffer types"; a model loaded with them off runs on the plain CPU kernels.

So before the first load of a model with a given llama.cpp build on a given CPU, a child
process loads it and evaluates a multi-token prompt. If the child dies of a signal, the
check is made again with the extra buffer types off; if that works, the model is always
loaded that way here. If both die, the error says which command reinstalls llama.cpp
without native flags. The verdict is cached per build, CPU and model file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ModelError

__all__ = ["build_key", "extra_buffers_ok", "fix_command", "plain_cpu_kernels"]

CHECK_TIMEOUT_S = 300.0
_PROMPT = "The quick brown fox jumps over the lazy dog. " * 8
"""Dozens of tokens: the faulting kernels run on batches, not on single tokens."""

Runner = Callable[[Path, bool], int]
"""Runs the check for a model, extra buffer types on or off: the child's return code."""


def _cpu_flags() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    return f"{platform.machine()} {platform.processor()}"


def _build_id() -> str:
    """The installed llama.cpp: version and the CPU library's size and time."""
    import llama_cpp

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    libs = sorted(lib_dir.glob("libggml-cpu*")) + sorted(lib_dir.glob("libllama*"))
    stats = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in libs if p.is_file()]
    return f"{llama_cpp.__version__}|{'|'.join(stats)}"


def build_key(model: Path, *, cpu: bool = True, length: int = 32) -> str:
    """A key for what llama.cpp made of ``model``: the installed build, this CPU's flags
    (with ``cpu``), and the file (path, size and time). Raises OSError if it is gone."""
    st = model.stat()
    where = f"{_cpu_flags()}|" if cpu else ""
    text = f"{_build_id()}|{where}{model.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _cache_file() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("voicegrok")) / "llama-check.json"


def _run_child(model: Path, extra: bool) -> int:
    args = [sys.executable, "-m", "voicegrok.engines.llama_check", str(model)]
    if not extra:
        args.append("--no-extra-bufts")
    try:
        done = subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, timeout=CHECK_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return 0  # slow, not dead: nothing to work around
    return done.returncode


def fix_command() -> str:
    """The command that rebuilds llama-cpp-python for this CPU without native flags."""
    flags = _cpu_flags().split()
    cmake = ["-DGGML_NATIVE=OFF"]
    for name, flag in (("avx2", "AVX2"), ("fma", "FMA"), ("f16c", "F16C")):
        if name in flags:
            cmake.append(f"-DGGML_{flag}=ON")
    if "avx512f" in flags:
        cmake.append("-DGGML_AVX512=ON")
    return (
        f'CMAKE_ARGS="{" ".join(cmake)}" pip install --force-reinstall --no-cache-dir '
        "llama-cpp-python"
    )


def extra_buffers_ok(model: Path, *, run: Runner = _run_child, cache: Path | None = None) -> bool:
    """Whether ``model`` may be loaded with llama.cpp's extra buffer types here (False:
    load it with :func:`plain_cpu_kernels`). Raises ModelError when llama.cpp dies on this
    CPU either way."""
    if os.environ.get("VOICEGROK_LLAMA_CHECK") == "off":
        return True
    cache = cache or _cache_file()
    key = build_key(model)
    known: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(cache.read_text())
    if key in known:
        return bool(known[key])
    code = run(model, True)
    if code >= 0:  # ran (a load error is the normal loader's to report)
        verdict = True
    elif run(model, False) >= 0:
        verdict = False
    else:
        raise ModelError(
            f"{model}: llama.cpp crashes on this CPU ({_signal_name(code)} while evaluating a "
            f"prompt, even without its extra kernels); reinstall it: {fix_command()}"
        )
    known[key] = verdict
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    return verdict


def _signal_name(code: int) -> str:
    with contextlib.suppress(ValueError):
        name = signal.Signals(-code).name
        return "Illegal instruction" if name == "SIGILL" else name
    return f"signal {-code}"


@contextlib.contextmanager
def plain_cpu_kernels() -> Iterator[None]:
    """Within this block, llama-cpp-python loads models with llama.cpp's extra buffer
    types off (no AMX, no weight repacking). ``Llama()`` takes no option for it: it
    builds its model parameters from ``llama_model_default_params()``, patched here for
    the whole process, so load nothing else with llama-cpp-python meanwhile (models are
    loaded one at a time, on their engine threads)."""
    import llama_cpp.llama_cpp as c

    default = c.llama_model_default_params

    def plain() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    c.llama_model_default_params = plain
    try:
        yield
    finally:
        c.llama_model_default_params = default


def _check(model: str, extra: bool) -> None:
    """The child: load ``model`` and evaluate a prompt of several dozen tokens."""
    from llama_cpp import Llama

    with contextlib.nullcontext() if extra else plain_cpu_kernels():
        llm = Llama(model_path=model, n_ctx=256, n_threads=1, verbose=False)
    tokens = llm.tokenize(_PROMPT.encode())[:200]
    llm.eval(tokens)


if __name__ == "__main__":
    _check(sys.argv[1], "--no-extra-bufts" not in sys.argv[2:])
