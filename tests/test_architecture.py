"""The package's layering: no import cycles, no hidden first-party imports, lint-imports kept."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "fluxcore"


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycle_among_fluxcore_modules_including_function_level_imports():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("fluxcore", include_external_packages=False)
    assert len(graph.modules) > 30
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    class G:
        modules = {"a", "b", "c"}

        @staticmethod
        def find_modules_directly_imported_by(m):
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[m]

    assert _cycles(G()) == [["a", "b"]]


def _hidden_first_party_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        catches_import_error = any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            or isinstance(h.type, ast.Tuple) and any(getattr(e, "id", "") in ("ImportError", "ModuleNotFoundError")
                                                     for e in h.type.elts)
            for h in node.handlers)
        if not catches_import_error:
            continue
        for stmt in node.body:
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.ImportFrom) and (sub.level > 0 or (sub.module or "").startswith("fluxcore")):
                    bad.append(f"{path.relative_to(root)}:{sub.lineno}")
                elif isinstance(sub, ast.Import) and any(a.name.startswith("fluxcore") for a in sub.names):
                    bad.append(f"{path.relative_to(root)}:{sub.lineno}")
    return bad


def test_no_first_party_import_guarded_by_import_error():
    bad = [b for f in sorted(PKG.rglob("*.py")) for b in _hidden_first_party_imports(f)]
    assert bad == []


def test_hidden_import_detector_detects(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("try:\n    from .loso import x\nexcept ImportError:\n    x = None\n"
                 "try:\n    import numpy\nexcept ImportError:\n    numpy = None\n")
    assert _hidden_first_party_imports(f, tmp_path) == ["m.py:2"]


def test_lint_imports_contracts_are_kept():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter not installed")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_loso_module_is_a_small_facade():
    n = len((PKG / "loso.py").read_text().splitlines())
    assert n < 300


def test_python_can_import_every_module_alone():
    """Each module imports on its own in a fresh interpreter (no reliance on import order)."""
    mods = sorted("fluxcore." + p.relative_to(PKG).with_suffix("").as_posix().replace("/", ".")
                  for p in PKG.rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    r = subprocess.run([sys.executable, "-c", code, *mods], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
