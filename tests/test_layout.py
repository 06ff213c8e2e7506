"""The package's shape: small modules, and no import cycles between them."""

from __future__ import annotations

import ast
from pathlib import Path

import voicegrok

PACKAGE = Path(voicegrok.__file__).parent
MAX_LINES = 500


def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def test_no_module_is_over_500_lines() -> None:
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (at most {MAX_LINES} lines): {long}"


def _imported_at_load(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports when it is loaded: its top-level
    imports, not those inside functions or under ``if TYPE_CHECKING:``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of imports in ``graph`` (module -> modules it imports), or []. An edge to
    one of the module's own parent packages is no cycle: the package is loaded first."""
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycle.extend([*trail[trail.index(nxt) :], nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*trail, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, [start]):
            break
    return cycle


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"p.a": {"p"}, "p": {"p.a"}}) == []  # a package and its module
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_modules_import_each_other_without_cycles() -> None:
    found = modules()
    graph = {name: _imported_at_load(name, path, set(found)) for name, path in found.items()}
    assert sum(map(len, graph.values())) > len(graph), "the imports were not read"
    cycle = find_cycle(graph)
    assert not cycle, " -> ".join(cycle)
