"""The house plan, as a test: no import cycle in src/geocnn, and a torch-free ``geocnn.grids``.

Imports are read with ``ast`` (function-level ones included, since hiding an import inside a
function does not remove the dependency), so the test sees the same graph a reader would.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
FORBIDDEN_IN_GRIDS = ("torch", "geocnn.model", "geocnn.train", "geocnn.predict", "geocnn.data",
                      "geocnn.losses", "geocnn.metrics")


def module_files(root: Path = SRC) -> dict[str, Path]:
    """``geocnn.grids.segy`` -> its file, for every module under ``root/geocnn``."""
    out = {}
    for path in sorted((root / "geocnn").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imported_names(name: str, path: Path, root: Path = SRC) -> set[str]:
    """Every dotted name ``path`` imports (``from a import b`` gives ``a.b``, and ``a`` for the
    names that are not modules; a package importing its own submodule is no cycle)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            subs = {f"{base}.{a.name}" for a in node.names}
            modules = {n for n in subs if _is_module(n, root)}
            names.update(modules)
            if modules != subs:
                names.add(base)
    return names


def _is_module(dotted: str, root: Path = SRC) -> bool:
    """Is ``geocnn.x.y`` a module or package under ``root`` (or an outside module, e.g. torch.nn)?"""
    if not dotted.startswith("geocnn."):
        return True
    p = root.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def import_graph(modules: dict[str, Path], root: Path = SRC) -> dict[str, set[str]]:
    """Module -> the geocnn modules it imports (a name resolves to the longest module it names)."""
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target in imported_names(name, path, root):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target not in (name, "geocnn"):
                edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None (depth-first search, colours)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycle_in_geocnn():
    cycle = find_cycle(import_graph(module_files()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "geocnn"
    (pkg / "grids").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "grids" / "__init__.py").write_text("")
    (pkg / "grids" / "a.py").write_text("from geocnn.grids.b import x\n")
    (pkg / "grids" / "b.py").write_text("def f():\n    from . import a  # hidden in a function\n")
    cycle = find_cycle(import_graph(module_files(tmp_path), tmp_path))
    assert cycle in (["geocnn.grids.a", "geocnn.grids.b", "geocnn.grids.a"],
                     ["geocnn.grids.b", "geocnn.grids.a", "geocnn.grids.b"])


@pytest.mark.parametrize("name", sorted(n for n in module_files() if n.startswith("geocnn.grids")))
def test_grids_modules_import_no_torch_model_or_training_code(name):
    names = imported_names(name, module_files()[name])
    bad = sorted(n for n in names for f in FORBIDDEN_IN_GRIDS if n == f or n.startswith(f + "."))
    assert not bad, f"{name} imports {', '.join(bad)}"


def test_importing_grids_loads_no_torch():
    grids = sorted(n for n in module_files() if n.startswith("geocnn.grids"))
    code = ("import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    r = subprocess.run([sys.executable, "-c", code, *grids], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-c", "import geocnn.grids, sys; assert 'torch' not in sys.modules"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
