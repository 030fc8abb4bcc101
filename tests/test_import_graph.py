"""No import cycles between the modules of lightning_wm and benchmarks.

The graph is read from the source with ``ast``: every ``import`` of the two packages counts,
module-level, inside a function or under ``if TYPE_CHECKING:`` (a deferred or type-only import
hides a cycle from the interpreter, not from the reader). Importing ``a.b.c`` first
runs the ``__init__`` of ``a`` and ``a.b``, so an import also depends on those packages, unless
the importer sits inside them (a package's own modules are imported from within its ``__init__``
as a matter of course).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lightning_wm", "benchmarks")

#: (importer, imported) edges tolerated while callers move to a new home; each names its end.
#: edges to leave out of the graph, each with its reason (none today)
TRANSITIONAL: set[tuple[str, str]] = set()


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the two packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names this module imports (a ``from x import y`` gives ``x`` and ``x.y``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _targets(name: str, importer: str, modules: set[str]) -> set[str]:
    """The modules that importing ``name`` runs: the longest known prefix of ``name`` and its
    enclosing packages that do not also enclose ``importer``."""
    parts = name.split(".")
    found = next((".".join(parts[:i]) for i in range(len(parts), 0, -1)
                  if ".".join(parts[:i]) in modules), None)
    if found is None:
        return set()
    chain = found.split(".")
    out = set()
    for i in range(1, len(chain) + 1):
        pkg = ".".join(chain[:i])
        if not (importer == pkg or importer.startswith(pkg + ".")):
            out.add(pkg)
    return out & modules


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    modules = set(files)
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        deps = set()
        for name in _imports(tree, module, path.name == "__init__.py"):
            deps |= _targets(name, module, modules)
        graph[module] = {d for d in deps - {module} if (module, d) not in TRANSITIONAL}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def find_cycles(graph: dict[str, set[str]], limit: int = 10) -> list[list[str]]:
    """Up to ``limit`` cycles: after each one found, its closing edge is dropped and the search
    runs again, so one failure lists every circle to untie."""
    graph = {node: set(deps) for node, deps in graph.items()}
    found = []
    while len(found) < limit and (cycle := find_cycle(graph)):
        found.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])
    return found


def test_finder_reports_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}) == [
        ["a", "b", "a"], ["c", "d", "c"]]


def test_relative_imports_and_enclosing_packages_count():
    tree = ast.parse("from . import y\nfrom .z import w\ndef f():\n    import p.q.r\n")
    assert _imports(tree, "p.x", False) == {"p", "p.y", "p.z", "p.z.w", "p.q.r"}
    modules = {"p", "p.q", "p.q.r", "p.x"}
    assert _targets("p.q.r", "p.x", modules) == {"p.q", "p.q.r"}
    assert _targets("p.q.r.name", "s", modules) == {"p", "p.q", "p.q.r"}


def test_no_import_cycles():
    graph = import_graph()
    assert "lightning_wm.transfer" in graph and "benchmarks.report" in graph
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
