"""The library's layout is its architecture: ideas in layers, the pipeline on top.

Imports go one way: data → encoder → vocoder → baselines → evaluation, then the
pipeline that runs them all. Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[1] / "synthsep_lib"

#: Layer of each top-level module or subpackage: a module may import only from its own
#: layer or lower ones.
LAYERS = {
    "files": 0,
    "config": 0,
    "show": 0,
    "audio": 1,
    "corpora": 2,
    "mixing": 2,
    "harder_mixing": 2,
    "spectrogram_blocks": 2,
    "encoder": 3,
    "vocoder": 4,
    "baselines": 5,
    "evaluation": 6,
    "separation": 7,
    "plots": 7,
    "pipeline": 8,
    "cli": 9,
    "__main__": 9,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # `from synthsep_lib.x import y` may import the submodule y
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def library_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in LIBRARY.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in imported_modules(path) if m in modules and m != name}
    return graph


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    if top not in LAYERS:
        raise AssertionError(f"{module} is in no layer of tests/test_layering.py::LAYERS")
    return LAYERS[top]


def test_every_module_has_a_layer():
    for module in library_graph():
        if module != "synthsep_lib":
            layer(module)


def test_the_library_never_imports_the_scripts():
    offenders = [
        str(path.relative_to(LIBRARY.parent))
        for path in LIBRARY.rglob("*.py")
        if any(m == "data_scripts" or m.startswith("data_scripts.") for m in imported_modules(path))
    ]
    assert offenders == []


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} (layer {layer(module)}) imports {dep} (layer {layer(dep)})"
        for module, deps in library_graph().items()
        if module != "synthsep_lib"
        for dep in deps
        if dep != "synthsep_lib" and layer(dep) > layer(module)
    ]
    assert upward == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    # a package's __init__ is imported by its submodules anyway; it must not import them
    graph = {
        m: {d for d in deps if not m.startswith(d + ".")} for m, deps in library_graph().items()
    }
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


@pytest.mark.parametrize(
    "graph, cycle",
    [
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ],
)
def test_the_cycle_finder_finds_cycles(graph, cycle):
    assert find_cycle(graph) == cycle
