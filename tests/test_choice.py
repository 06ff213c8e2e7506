"""The default LLM (``auto``): the best-quality installed model fast enough here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from voicegrok import choice, models
from voicegrok.choice import Choice, Speed, choose_llm, pick


def entry(name: str, quality: int) -> models.ModelEntry:
    return models.ModelEntry(
        name=name,
        kind="llm",
        description="",
        locate=lambda: None,
        origin="test",
        install_hint="",
        quality=quality,
    )


BEST, SMALL = entry("best", 99), entry("small", 80)


def test_auto_takes_the_best_quality_that_is_fast_enough() -> None:
    fast, slow = Speed(200, 60), Speed(900, 13)
    assert slow.fast_enough() and fast.fast_enough()
    assert pick([(BEST, Path("b"), slow), (SMALL, Path("s"), fast)]).name == "best"
    too_slow = Speed(1400, 5)  # decodes slower than twice the pace of speech
    got = pick([(BEST, Path("b"), too_slow), (SMALL, Path("s"), fast)])
    assert got.name == "small"
    assert "quality 80/100" in got.reason
    late = Speed(1600, 30)  # its first clause comes too late
    assert not late.fast_enough()
    none = pick([(BEST, Path("b"), late), (SMALL, Path("s"), Speed(1500, 40))])
    assert none.name == "small" and none.reason.startswith("none is fast enough")


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(choice.ENV, raising=False)
    return tmp_path / "cache" / "voicegrok" / "llm-speed.json"


def test_auto_measures_once_per_machine_and_model_file(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = models.DEFAULTS["llm"]
    monkeypatch.setattr(choice, "candidates", lambda: [small])
    measured: list[Path] = []
    real = choice.measure

    def counting(path: Path, threads: int) -> Speed:
        measured.append(path)
        return real(path, threads)

    monkeypatch.setattr(choice, "measure", counting)
    first = choose_llm(None, 2)
    assert first.name == small.name and first.path == models.resolve("llm", small.name)
    speed = json.loads(own_cache.read_text())
    ((key, figures),) = speed.items()
    assert str(first.path) in key and "threads=2" in key
    assert figures["tokens_per_s"] > 8 and 0 < figures["first_token_ms"] < 5000
    assert choose_llm("auto", 2) == first  # from the cache
    assert len(measured) == 1
    choose_llm(None, 1)  # another thread count is another figure
    assert len(measured) == 2


def test_a_named_model_or_the_environment_overrides_auto(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: Any) -> Choice:
        raise AssertionError("auto was not asked for")

    monkeypatch.setattr(choice, "pick", fail)
    assert choose_llm("smollm2-135m", 2).reason == "chosen by name"
    monkeypatch.setenv(choice.ENV, "smollm2-135m")
    assert choose_llm(None, 2).name == "smollm2-135m"
    assert not own_cache.exists()


def test_voicegrok_models_bench_measures_here_and_shows_the_choice(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user runs it, with every installed LLM of known quality (the 1.5B too, when its
    parts are installed): each measured, and auto's pick is the best of those fast enough."""
    for name in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"):  # joined already, if so
        entry = next(e for e in models.catalog() if e.name == name)
        if entry.file is not None and entry.file.is_file():
            target = tmp_path / "cache" / "voicegrok" / entry.file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(entry.file)  # not joined again
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(choice.ENV, raising=False)
    run = cli("models", "--bench", "--json", timeout=600)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    llms = [r for r in report["models"] if r["kind"] == "llm" and "tokens_per_s" in r]
    assert {r["name"] for r in llms} >= {"smollm2-135m"}
    fast = [
        r
        for r in llms
        if r["tokens_per_s"] >= choice.MIN_TOKENS_PER_S
        and r["first_clause_ms"] <= choice.MAX_FIRST_CLAUSE_MS
    ]
    best = max(fast, key=lambda r: r["quality"]) if fast else None
    auto = report["auto_llm"]
    if best is not None:
        assert auto["name"] == best["name"]
        assert auto["reason"].startswith("best quality here")
    listing = cli("models")
    assert f"LLM auto (the default): {auto['name']}" in listing.out
