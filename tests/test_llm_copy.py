"""A Q4_1 model (the default SmolLM2) is loaded from a Q8_0 copy made once in the cache:
llama.cpp has batched kernels for Q8_0 and none for Q4_1. The copy answers as the shipped
weights do; other models, and a cache that cannot be written, leave the file as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicegrok import models
from voicegrok.config import Settings
from voicegrok.engines import llama_copy
from voicegrok.engines.llama import LlamaEngine, load_llama
from voicegrok.engines.llama_copy import working_copy
from voicegrok.errors import ModelError

pytestmark = pytest.mark.models


def _file_type(path: Path) -> int | None:
    with llama_copy._quiet_llama():
        return llama_copy._file_type(path)


def test_the_default_model_gets_a_q8_0_copy_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = models.resolve("llm")
    assert _file_type(source) == 3  # the shipped SmolLM2 is Q4_1

    copy = working_copy(source, cache=tmp_path)
    assert copy.parent == tmp_path / "llm-copies" and copy.is_file()
    assert _file_type(copy) == 7  # LLAMA_FTYPE_MOSTLY_Q8_0
    assert not list(copy.parent.glob("*.part"))
    made_at = copy.stat().st_mtime_ns

    def must_not_run(_model: Path, _target: Path) -> None:
        raise AssertionError("the copy already made is used")

    monkeypatch.setattr(llama_copy, "_requantize", must_not_run)
    assert working_copy(source, cache=tmp_path) == copy
    assert copy.stat().st_mtime_ns == made_at


def test_the_copy_answers_right_as_the_shipped_weights_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not token for token (Q8_0 rounds each weight again, a little): the same facts. A
    135M model's greedy answer can flip either way on rounding, by CPU: on one AMD EPYC
    here the shipped Q4_1 file answers "What is 2 plus 2?" with a definition and no sum,
    the copy with "2 + 2 = 4"; on the machine before, both gave the sum."""
    source = models.resolve("llm")
    copy = working_copy(source, cache=tmp_path)
    monkeypatch.setenv("VOICEGROK_LLM_COPY", "off")  # each file loaded as it is
    system = {"role": "system", "content": Settings().system_prompt}
    facts = {
        "What is the capital of France?": "Paris",
        "What is the capital of Japan?": "Tokyo",
        "What is 2 plus 2?": "4",
        "What is 3 plus 5?": "8",
    }
    right: dict[Path, set[str]] = {}
    answers: dict[Path, list[str]] = {}
    for path in (source, copy):
        engine = LlamaEngine(path, n_ctx=512, threads=2)
        answers[path] = []
        for question in facts:
            messages = [system, {"role": "user", "content": question}]
            answers[path].append(
                "".join(engine.stream_chat(messages, max_tokens=24, temperature=0))
            )
        right[path] = {q for q, a in zip(facts, answers[path], strict=True) if facts[q] in a}
    assert right[source] <= right[copy], answers  # what the shipped weights know, it knows
    assert len(right[copy]) >= 3, answers[copy]


def test_a_model_that_is_not_q4_1_is_loaded_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = working_copy(models.resolve("llm"), cache=tmp_path / "first")
    assert working_copy(copy, cache=tmp_path) == copy  # Q8_0 already
    # the verdict is kept: the file is not opened again
    monkeypatch.setattr(llama_copy, "_file_type", lambda _p: pytest.fail("read again"))
    assert working_copy(copy, cache=tmp_path) == copy


def test_a_file_that_is_not_a_model_is_left_for_the_loader_to_report(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    assert working_copy(bad, cache=tmp_path / "cache") == bad
    assert working_copy(tmp_path / "missing.gguf", cache=tmp_path) == tmp_path / "missing.gguf"


def test_a_cache_that_cannot_be_written_loads_the_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = models.resolve("llm")
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")  # the cache folder cannot be made under a file
    assert working_copy(source, cache=blocked) == source
    assert "cannot write its Q8_0 copy" in caplog.text


def test_it_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEGROK_LLM_COPY", "off")
    source = models.resolve("llm")
    assert working_copy(source, cache=tmp_path) == source
    assert not (tmp_path / "llm-copies").exists()


def test_a_copy_that_fails_leaves_no_part_file_and_loads_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import llama_cpp

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", lambda *_args: 1)
    source = models.resolve("llm")
    assert working_copy(source, cache=tmp_path) == source
    assert "cannot write its Q8_0 copy" in caplog.text
    assert not list((tmp_path / "llm-copies").glob("*.part"))
    assert not list((tmp_path / "llm-copies").glob("*.gguf"))


def test_a_damaged_verdict_file_is_read_as_empty(tmp_path: Path) -> None:
    folder = tmp_path / "llm-copies"
    folder.mkdir()
    (folder / "not-q4_1.json").write_text("null")
    copy = working_copy(models.resolve("llm"), cache=tmp_path)
    assert copy != models.resolve("llm") and copy.is_file()
    (folder / "not-q4_1.json").write_text('{"no": "list"}')
    assert working_copy(copy, cache=tmp_path) == copy


def test_a_damaged_copy_is_thrown_away_and_the_source_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = models.resolve("llm")
    copy = working_copy(source)
    assert copy.parent == tmp_path / "voicegrok" / "llm-copies"
    copy.write_bytes(copy.read_bytes()[: 1 << 20])  # cut short, as by a full disk elsewhere
    llm = load_llama(source, n_ctx=256, threads=1, seed=0)
    assert llm.model_path == str(source)
    assert not copy.exists()  # made again at the next load
    assert working_copy(source) == copy and copy.stat().st_size > 100 << 20


def test_a_broken_model_gives_one_line_naming_the_users_file(tmp_path: Path) -> None:
    bad = tmp_path / "mine.gguf"
    bad.write_bytes(b"GGUF" + b"\1" * 256)
    with pytest.raises(ModelError) as caught:
        load_llama(bad, n_ctx=256, threads=1, seed=0)
    message = str(caught.value)
    assert message.startswith(f"{bad}: cannot load the GGUF model") and "\n" not in message
