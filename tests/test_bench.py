"""The bench's pure parts, without models: statistics, timing, the reports' shapes, memory;
and a short ``voicegrok bench ui`` in real processes, on the real models."""

from __future__ import annotations

import importlib
import json
import mmap
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from voicegrok.bench import baseline, commands, heard, latency, memory, server, ui
from voicegrok.bench.stats import percentiles, ratios
from voicegrok.config import Settings
from voicegrok.conversation import Conversation

from .conftest import Run


def test_percentiles_of_a_known_list() -> None:
    """p50 is the median, p90 the nearest rank, min and max the extremes, whatever the order."""
    assert percentiles([7, 3, 10, 1, 5, 9, 2, 8, 4, 6]) == {
        "p50": 5.5,
        "p90": 9,
        "min": 1,
        "max": 10,
        "n": 10,
    }
    assert percentiles([3.0, 1.0, 2.0]) == {"p50": 2, "p90": 3, "min": 1, "max": 3, "n": 3}


def test_percentiles_round_to_the_digits_asked_and_are_empty_for_no_values() -> None:
    """Values are rounded to ``digits``; no values give an empty summary."""
    assert percentiles([2 / 3], digits=3) == {
        "p50": 0.667,
        "p90": 0.667,
        "min": 0.667,
        "max": 0.667,
        "n": 1,
    }
    assert percentiles([]) == {}


def test_ratios_per_turn_skip_turns_without_a_figure() -> None:
    """Each turn's measured/reference, summarized overall and per question; a turn with no
    measured speed or a zero reference is left out."""
    summary = ratios(
        [(1, 90.0, 100.0), (1, 80.0, 100.0), (2, 50.0, 50.0), (2, None, 50.0), (3, 1.0, 0.0)]
    )
    assert summary == {
        "p50": 0.9,
        "p90": 1.0,
        "min": 0.8,
        "max": 1.0,
        "n": 3,
        "per_question_p50": {"1": 0.85, "2": 1.0},
    }


def test_timed_counts_the_speed_between_the_first_and_the_last_piece() -> None:
    """Empty pieces are not tokens; tokens/s runs from the first piece to the last."""
    ticks = iter([10.0, 10.5, 11.0, 12.5])
    result = baseline.timed(["a", None, "", "b", "c"], clock=lambda: next(ticks))
    assert result == {"tokens_per_s": 1.0, "first_token_ms": 500.0, "n_tokens": 3}
    assert baseline.timed([], clock=lambda: 0.0)["tokens_per_s"] == 0.0


def test_median_run_keeps_every_runs_speed() -> None:
    """The run of median speed, with the speed of each run."""
    runs = [{"tokens_per_s": 3.0}, {"tokens_per_s": 1.0}, {"tokens_per_s": 2.0}]
    assert baseline.median_run(runs) == {"tokens_per_s": 2.0, "runs_tokens_per_s": [3.0, 1.0, 2.0]}


def test_questions_are_the_history_up_to_each_question() -> None:
    """Each conversation ends with one of the first ``n`` questions."""
    conv = Conversation("sys")
    for q, a in [("q1", "a1"), ("q2", "a2"), ("q3", "a3")]:
        conv.add_user(q)
        conv.add_assistant(a)
    asked = latency.questions(conv, 2)
    assert [[m["content"] for m in c.turns] for c in asked] == [["q1"], ["q1", "a1", "q2"]]
    assert all(c.system_prompt == "sys" for c in asked)


def test_latency_report_keeps_its_keys_and_sets_each_turn_against_the_llm_alone() -> None:
    """The report's keys; each live turn's tokens/s divided by the same turn's alone."""
    rows: list[dict[str, object]] = [
        {
            "run": 1,
            "question": 1,
            "stt_ms": 200,
            "first_audio_device_ms": 450.0,
            "tokens_per_s": 80.0,
        },
        {"run": 1, "question": 2, "stt_ms": 300, "tokens_per_s": 90.0, "interrupted": True},
    ]
    alone = [
        {"bare": {"tokens_per_s": 100.0}, "engine": {"tokens_per_s": 80.0}},
        {"bare": {"tokens_per_s": 90.0}, "engine": {"tokens_per_s": 0.0}},
    ]
    report = latency.latency_report(
        Settings(threads=2),
        runs=1,
        load_s=1.234,
        rows=rows,
        barge_in_ms=[121.04],
        barge_in_turns=1,
        asked=[(1, 1), (1, 2)],
        alone=alone,
    )
    assert list(report) == [
        "benchmark", "what", "runs", "turns", "interrupted", "settings", "load_s",
        "from_end_of_speech_ms", "barge_in_ms", "llm_in_pipeline_tokens_per_s", "llm_bare",
        "llm_in_pipeline_vs_bare", "llm_engine_alone", "llm_in_pipeline_vs_engine_alone",
        "targets", "per_turn", "peak_rss_mb",
    ]  # fmt: skip
    assert report["turns"] == 2 and report["interrupted"] == 1 and report["load_s"] == 1.23
    assert report["from_end_of_speech_ms"]["final_transcript"]["p50"] == 250
    assert report["from_end_of_speech_ms"]["first_llm_token"] == {}
    assert report["barge_in_ms"]["each"] == [121.0]
    assert report["llm_in_pipeline_vs_bare"]["per_question_p50"] == {"1": 0.8, "2": 1.0}
    assert report["llm_in_pipeline_vs_engine_alone"]["n"] == 1  # a zero speed is left out
    assert report["per_turn"] is rows


def test_sessions_report_times_each_batch_by_its_slowest_response() -> None:
    """Aggregate speed is all tokens over the sum of each batch's slowest response;
    memory per session is the growth over the models' memory, shared by the sessions."""
    rows: list[server.Row] = [
        {"status": "completed", "first_audio_ms": 100.0, "written_ms": 500.0,
         "done_ms": 1000.0, "tokens": 10},
        {"status": "completed", "first_audio_ms": 300.0, "written_ms": 1000.0,
         "done_ms": 2000.0, "tokens": 20},
        {"status": "cancelled", "first_audio_ms": 200.0, "written_ms": 1000.0,
         "done_ms": 3000.0, "tokens": 30},
        {"status": "completed", "first_audio_ms": 200.0, "written_ms": 200.0,
         "done_ms": 500.0, "tokens": 0},
    ]  # fmt: skip
    report = server.sessions_report(2, 2, rows, peak_mb=520.0, loaded_mb=500.0)
    assert report["completed"] == 3
    assert report["first_audio_ms"]["p50"] == 200
    assert report["aggregate_tokens_per_s"] == 12.0  # 60 tokens in 2 s + 3 s
    assert report["aggregate_decode_tokens_per_s"] == 30.0  # written in 1 s + 1 s
    assert report["rss_peak_mb"] == 520.0 and report["rss_per_session_mb"] == 10.0
    assert report["pss_peak_mb"] is None and report["pss_per_session_mb"] is None
    unmeasured = server.sessions_report(2, 2, rows, peak_mb=None, loaded_mb=None)
    assert unmeasured["rss_peak_mb"] is None and unmeasured["rss_per_session_mb"] is None
    with_pss = server.sessions_report(2, 2, rows, 520.0, 500.0, pss=(410.0, 400.0))
    assert with_pss["pss_peak_mb"] == 410.0 and with_pss["pss_per_session_mb"] == 5.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps_rollup")
def test_a_file_mapped_twice_counts_once_in_the_pss(tmp_path: pathlib.Path) -> None:
    """Two mappings of one file (two llama.cpp models of one GGUF) add its size twice to
    the resident set but once to the proportional set size."""
    size = 64 * 2**20
    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(size))
    rss0, pss0 = memory.rss_mb(), memory.pss_mb()
    assert rss0 is not None and pss0 is not None
    with path.open("rb") as f:
        maps = [mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) for _ in range(2)]
    try:
        for m in maps:
            for i in range(0, size, mmap.PAGESIZE):
                m[i]  # each page resident in both mappings
        rss1, pss1 = memory.rss_mb(), memory.pss_mb()
        assert rss1 is not None and pss1 is not None
        size_mb = size / 1e6
        assert rss1 - rss0 > 1.8 * size_mb
        assert 0.8 * size_mb < pss1 - pss0 < 1.2 * size_mb
    finally:
        for m in maps:
            m.close()


def test_memory_of_this_process_is_measured() -> None:
    """Peak and current resident memory are positive; the current is within the peak."""
    peak, now = memory.peak_rss_mb(), memory.rss_mb()
    assert peak is not None and now is not None
    assert 0 < now <= peak * 2**20 / 1e6 * 1.01
    assert memory.peak_rss_field() == {"peak_rss_mb": memory.peak_rss_mb()}


@pytest.fixture
def without_resource(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``voicegrok.bench.memory`` as on Windows: no ``resource`` module."""
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "resource", None)
        importlib.reload(memory)
        assert memory.resource is None
        yield
    importlib.reload(memory)


@pytest.mark.usefixtures("without_resource")
def test_memory_without_the_resource_module() -> None:
    """Without ``resource`` (Windows) the module imports and the functions answer without
    error; on Linux ``/proc`` still gives the peak."""
    peak = memory.peak_rss_mb()
    assert memory.rss_mb() is not None
    if sys.platform.startswith("linux"):
        assert peak is not None and peak > 0


def test_a_memory_figure_that_cannot_be_read_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the platform gives no peak memory, the JSON says why it is null."""
    monkeypatch.setattr(memory, "_peak_bytes", lambda: None)
    field = memory.peak_rss_field()
    assert field["peak_rss_mb"] is None and "not measurable" in str(field["peak_rss_mb_missing"])


def test_the_bench_does_not_import_the_command_line() -> None:
    """``voicegrok.bench`` stands without ``voicegrok.cli`` (no import cycle)."""
    code = "import sys, voicegrok.bench; sys.exit('voicegrok.cli' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


async def test_the_scripted_person_asks_each_question_then_speaks_over_an_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each question after half a second of silence; then the second again and, once its
    answer has played 1.5 s, the fourth over it, with the onset of its words noted."""
    import numpy as np

    from voicegrok.bench import scripted

    async def at_once(audio: np.ndarray, rate_hz: int) -> Any:
        yield audio

    class Playing(scripted.TimedSpeaker):
        @property
        def buffered_s(self) -> float:
            return 1.0

    class Session:
        answering = False

    monkeypatch.setattr(scripted, "paced_chunks", at_once)
    recordings = [np.full(800, (i + 1) / 10, np.float32) for i in range(4)]
    speaker = Playing(16000, keep=False)
    start = time.perf_counter()
    heard = [c async for c in scripted.person(recordings, speaker, range(6), Session())]
    spoken = [round(float(c.max()), 2) for c in heard if c.any()]
    assert spoken == [0.1, 0.2, 0.3, 0.4, 0.2, 0.4]
    assert len(heard[0]) == 8000 + 800 and not heard[0][:8000].any()
    assert speaker.onset_s is not None and speaker.onset_s - start >= 1.5


def _pair(run: int, prompt: int, ask: float, ui_tps: float, n_ui: int = 10) -> dict[str, Any]:
    return {
        "run": run,
        "prompt": prompt,
        "ask": {"tokens_per_s": ask, "n_tokens": 10},
        "ui": {"tokens_per_s": ui_tps, "n_tokens": n_ui},
        "same_answer": n_ui == 10,
    }


def test_typed_report_sets_each_ui_turn_against_ask_on_the_same_prompt() -> None:
    """ui/ask per pair (each, p50, min, per prompt); the answers are the same only when
    every pair gave as many tokens."""
    pairs = [_pair(1, 1, 100.0, 90.0), _pair(1, 2, 100.0, 50.0, n_ui=9), _pair(2, 1, 80.0, 80.0)]
    report = ui.typed_report("text", ["a", "b"], 2, pairs)
    assert report["ui_vs_ask"]["each"] == [0.9, 0.5, 1.0]
    assert report["ui_vs_ask"]["p50"] == 0.9 and report["ui_vs_ask"]["min"] == 0.5
    assert report["ui_vs_ask"]["per_prompt_p50"] == {"1": 0.95, "2": 0.5}
    assert report["ask_tokens_per_s"]["n"] == 3 and report["ui_tokens_per_s"]["min"] == 50
    assert report["same_answer"] is False
    first, second = report["per_prompt"]
    assert first["text"] == "a" and first["same_answer"] and not second["same_answer"]
    assert first["n_tokens"] == {"ask": [10, 10], "ui": [10, 10]}
    assert first["ui_vs_ask"]["each"] == [0.9, 1.0]


def test_heard_questions_are_the_demo_recordings_then_other_voices() -> None:
    """bench latency's heard part asks the demo questions, then the same kind of question
    in other voices (espeak-ng's and Piper's slowed down), each labelled with its voice."""
    from voicegrok.audio import WHISPER_RATE_HZ
    from voicegrok.engines.whisper import WhisperEngine
    from voicegrok.models import resolve

    questions = heard.heard_questions((2,), heard.HEARD_VOICES)
    labels = [label for label, _ in questions]
    assert labels == ["turn2.wav", *(f"{v}: {t}" for v, t in heard.HEARD_VOICES)], labels
    stt = WhisperEngine(resolve("stt"))
    for (voice, text), (_, audio) in zip(heard.HEARD_VOICES, questions[1:], strict=True):
        assert 0.8 < len(audio) / WHISPER_RATE_HZ < 6, voice  # one short question each
        said = set(re.findall(r"[a-z']+", stt.transcribe(audio).lower()))
        words = set(re.findall(r"[a-z']+", text.lower()))
        assert len(words & said) >= 0.6 * len(words), (voice, said)  # its words, mostly
    assert [label for label, _ in heard.heard_questions()] == ["turn2.wav", "turn3.wav"]


def test_heard_report_sets_the_ui_against_talk_by_their_medians() -> None:
    """p50/p90 of each, the UI's p50 minus talk's; turns where nothing was heard are
    counted, not averaged."""
    turns = [
        {"who": "talk", "heard_ms": 500.0, "first_audio_device_ms": 400.0},
        {"who": "talk", "heard_ms": 700.0, "first_audio_device_ms": 600.0},
        {"who": "ui", "heard_ms": 640.0, "first_audio_device_ms": 500.0},
        {"who": "ui", "heard_ms": None, "first_audio_device_ms": None},
    ]
    report = heard.heard_report(["turn2.wav"], 1, turns)
    assert report["talk_ms"]["p50"] == 600 and report["ui_ms"]["p50"] == 640
    assert report["ui_minus_talk_p50_ms"] == 40 and report["not_heard"] == 1
    assert report["reported_first_audio_device_ms"]["ui"]["n"] == 1
    assert heard.heard_report([], 1, [])["ui_minus_talk_p50_ms"] is None


def test_heard_time_is_accounted_for_from_the_words_end_to_the_sound() -> None:
    """The command's end of speech (its clock is the machine's monotonic one) against the
    moment the last voiced sample was due; what is left after its own figure is the
    output path. Each step's p50 per command."""
    row = {"speech_end_at_s": 100.05, "first_audio_device_ms": 400.0, "stt_ms": 200.0}
    assert heard._accounted(100.0, 460.0, row) == {
        "end_detected_ms": 50.0,
        "after_handoff_ms": 10.0,
    }
    assert heard._accounted(100.0, None, row) == {"end_detected_ms": 50.0}
    assert heard._accounted(100.0, 460.0, {}) == {}  # an older command: no clock
    turns = [
        {"who": "talk", "heard_ms": 460.0, "end_detected_ms": 50.0, "stt_ms": 200.0},
        {"who": "talk", "heard_ms": 500.0, "end_detected_ms": 70.0, "stt_ms": 220.0},
    ]
    where = heard.heard_report(["turn2.wav"], 1, turns)["where_the_time_went_ms"]
    assert where["talk"]["end_detected_ms"]["p50"] == 60 and where["talk"]["stt_ms"]["n"] == 2
    assert "ui" not in where  # not run


def test_ui_report_says_which_targets_are_met_and_keeps_skipped_modes() -> None:
    """Each target with its p50 and whether it is met; a mode skipped or not run has
    neither."""
    text = ui.typed_report("text", ["a"], 1, [_pair(1, 1, 100.0, 96.0)])
    report = ui.ui_report(
        Settings(threads=2),
        1,
        {
            "text": text,
            "speech": {"skipped": "no PulseAudio"},
            "heard": {"ui_minus_talk_p50_ms": 25.0},
        },
    )
    assert report["speech"] == {"skipped": "no PulseAudio"}
    assert report["targets"] == {
        "text_ui_vs_ask": {"target": ">= 0.95", "p50": 0.96, "met": True},
        "speech_ui_vs_ask": {"target": ">= 0.95", "p50": None, "met": None},
        "heard_ui_minus_talk_ms": {"target": "<= 20", "p50": 25.0, "met": False},
    }


def test_sound_starts_and_ends_where_a_sample_passes_the_level() -> None:
    """The first loud sample from a point on, and the last loud sample (the end of the words)."""
    import numpy as np

    audio = np.zeros(100, dtype=np.float32)
    audio[[10, 40, 41]] = [0.5, -0.2, 0.011]
    assert heard.first_above(audio) == 10 and heard.first_above(audio, 11) == 40
    assert heard.first_above(audio, 42) is None and heard.last_above(audio) == 41


def test_commands_get_the_model_options_that_differ_from_the_defaults() -> None:
    """Only options changed from the defaults are passed on, as command-line flags."""
    settings = Settings(max_tokens=16, llm_model="m.gguf", threads=Settings().threads)
    assert commands.settings_flags(settings) == ["--llm-model", "m.gguf", "--max-tokens", "16"]


def test_bench_ui_skips_the_modes_this_machine_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without tmux every mode is skipped with the reason, without PulseAudio those that
    speak; nothing is started for them."""
    monkeypatch.setattr(ui.rig, "missing", lambda: "pulseaudio not installed")
    monkeypatch.setattr(ui.terminal, "missing", lambda: "tmux not installed")
    report = ui.run_ui_bench(Settings(), runs=1, modes=["speech", "heard"], progress=False)
    assert (
        report["speech"]
        == report["heard"]
        == {"skipped": "tmux not installed; pulseaudio not installed"}
    )
    assert "text" not in report and report["targets"]["speech_ui_vs_ask"]["met"] is None
    monkeypatch.setattr(ui.terminal, "missing", lambda: None)
    report = ui.run_ui_bench(Settings(), runs=1, modes=["heard"], progress=False)
    assert report["heard"] == {"skipped": "pulseaudio not installed"}


needs_tmux = pytest.mark.skipif(
    shutil.which("tmux") is None and not os.environ.get("CI"),
    reason="needs tmux (installed by .ci/run)",
)


@needs_tmux
def test_bench_ui_that_fails_says_why_in_one_line(cli: Any) -> None:
    """A UI that cannot start is one error line, not a traceback, and leaves no process."""
    r: Run = cli("bench", "ui", "--modes", "text", "--llm-model", "/nowhere.gguf")
    assert r.code == 1, r.err
    assert r.err.startswith("voicegrok: error: bench ui, text:") and "/nowhere.gguf" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


@needs_tmux
@pytest.mark.models
def test_a_short_bench_ui_measures_every_mode(cli: Any, tmp_path: Any) -> None:
    """One run of each mode with short answers: the JSON has every part, with real
    figures (the speeds themselves are the bench's business, not the test's)."""
    out = tmp_path / "ui.json"
    r: Run = cli("bench", "ui", "--runs", "1", "--max-tokens", "8", "--out", str(out), "-q")
    assert r.code == 0, r.err
    report = json.loads(out.read_text())
    assert report == json.loads(r.out)
    modes = ["text", "speech", "heard"]
    assert list(report) == ["benchmark", "what", "runs", "settings", *modes, "targets"]
    for mode, prompts in (("text", len(ui.PROMPTS)), ("speech", len(ui.SPEECH_PROMPTS))):
        part = report[mode]
        assert len(part["pairs"]) == prompts, (mode, part)
        for pair in part["pairs"]:
            for who in ("ask", "ui"):
                assert pair[who]["tokens_per_s"] > 0 and pair[who]["n_tokens"] > 0, pair
        assert part["ui_vs_ask"]["n"] == prompts and part["ui_vs_ask"]["p50"] > 0
    for pair in report["speech"]["pairs"]:  # spoken, and the UI's sound reached the speaker
        assert pair["ask"]["audio_s"] > 0 and pair["ui"]["first_audio_device_ms"] > 0, pair
    part = report["heard"]
    turns = json.dumps(part["turns"], indent=1)
    assert len(part["turns"]) == 2 * len(heard.HEARD_QUESTIONS), turns
    # each answer heard a moment after the words (none may be, on a slow machine: an
    # answer let out at a pause in the words was still sounding when they ended)
    assert part["talk_ms"]["n"] and part["ui_ms"]["n"], turns
    heard_ms = [t["heard_ms"] for t in part["turns"] if t["heard_ms"] is not None]
    assert all(0 < ms < 10_000 for ms in heard_ms), turns
    assert isinstance(part["ui_minus_talk_p50_ms"], float)
    for t in part["turns"]:  # both processes' clocks agree: each step is where it can be
        if t["heard_ms"] is not None:
            assert -30 < t["end_detected_ms"] < 1000 and -30 < t["after_handoff_ms"] < 500, t
    assert set(part["where_the_time_went_ms"]) == {"what", "talk", "ui"}
    assert all(isinstance(t["met"], bool) for t in report["targets"].values())


def test_a_metrics_file_is_read_as_it_grows(tmp_path: pathlib.Path) -> None:
    """A running command appends a line per turn: each look reads what was added, and a
    line still being written waits for its end."""
    path = tmp_path / "m.jsonl"
    metrics = commands.MetricsFile(path)
    assert metrics.rows() == []
    with path.open("a") as f:
        f.write('{"turn_id": 1}\n{"turn_id": 2, "tok')
    assert metrics.rows() == [{"turn_id": 1}]
    with path.open("a") as f:
        f.write('ens_per_s": 99.5}\n')
    assert metrics.rows() == [{"turn_id": 1}, {"turn_id": 2, "tokens_per_s": 99.5}]
    path.write_text('{"turn_id": 7}\n')  # written anew
    assert metrics.rows() == [{"turn_id": 7}]
