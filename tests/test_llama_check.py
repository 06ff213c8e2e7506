"""llama.cpp that dies on this CPU (SIGILL on AMX) is caught by a one-time check in a child
process: the model is then loaded without llama.cpp's extra buffer types, or the user is
told in one line how to reinstall it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voicegrok import models
from voicegrok.engines import llama_check
from voicegrok.engines.llama_check import extra_buffers_ok, plain_cpu_kernels
from voicegrok.engines.llama_copy import working_copy
from voicegrok.errors import ModelError

pytestmark = pytest.mark.models


def dies_of_sigill(_model: Path, _extra: bool) -> int:
    """A real child process killed by SIGILL, as a native build on an AMX VM is."""
    code = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"
    return subprocess.run([sys.executable, "-c", code]).returncode


def test_the_real_check_passes_here_and_is_made_once(tmp_path: Path) -> None:
    model = models.resolve("llm")
    cache = tmp_path / "check.json"
    assert extra_buffers_ok(model, cache=cache) is True
    assert list(json.loads(cache.read_text()).values()) == [True]

    def must_not_run(_model: Path, _extra: bool) -> int:
        raise AssertionError("the cached verdict is used")

    assert extra_buffers_ok(model, run=must_not_run, cache=cache) is True


def test_a_build_that_dies_with_extra_buffers_is_used_without_them(tmp_path: Path) -> None:
    model = models.resolve("llm")
    calls: list[bool] = []

    def amx_vm(m: Path, extra: bool) -> int:
        calls.append(extra)
        return dies_of_sigill(m, extra) if extra else 0

    cache = tmp_path / "check.json"
    assert extra_buffers_ok(model, run=amx_vm, cache=cache) is False
    assert calls == [True, False]
    assert extra_buffers_ok(model, run=amx_vm, cache=cache) is False
    assert calls == [True, False], "cached per build, CPU and model"


def test_a_build_that_dies_either_way_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    model = models.resolve("llm")
    with pytest.raises(ModelError) as caught:
        extra_buffers_ok(model, run=dies_of_sigill, cache=tmp_path / "c.json")
    message = str(caught.value)
    assert "\n" not in message and str(model) in message
    assert "Illegal instruction" in message
    assert "-DGGML_NATIVE=OFF" in message and "pip install --force-reinstall" in message


def test_plain_kernels_switch_the_extra_buffer_types_off_only_inside() -> None:
    import llama_cpp.llama_cpp as c

    with plain_cpu_kernels():
        assert c.llama_model_default_params().use_extra_bufts is False
    assert c.llama_model_default_params().use_extra_bufts is True


def test_ask_answers_with_the_plain_kernels_when_the_check_said_so(tmp_path: Path) -> None:
    """The fallback through the real command: the cached verdict says extra buffer types
    crash here, and ``voicegrok ask`` still answers."""
    cache_home = tmp_path / "cache"
    # the file loaded: the default model's working copy (see llama_copy), made here where
    # the command will find it
    model = working_copy(models.resolve("llm"), cache=cache_home / "voicegrok")
    cache = cache_home / "voicegrok" / "llama-check.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({llama_check.build_key(model): False}))
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    done = subprocess.run(
        [sys.executable, "-m", "voicegrok", "ask", "--no-speak", "-q", "What is 2 plus 2?"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert json.loads(cache.read_text()) == {llama_check.build_key(model): False}, "used as is"


def test_a_signal_is_named_for_people() -> None:
    assert llama_check._signal_name(-signal.SIGILL) == "Illegal instruction"
    assert llama_check._signal_name(-signal.SIGSEGV) == "SIGSEGV"
