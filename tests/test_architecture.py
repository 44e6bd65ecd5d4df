"""The house rules: concern folders import only from folders before them, and no module is part
of an import cycle, counting imports inside functions (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sftlab"
# Dependency order: each folder may import from itself and the folders before it.
LAYERS = [
    "utils",
    "config",
    "data",
    "models",
    "strategies",
    "tasks",
    "training",
    "inference",
    "export",
    "deploy",
    "reporting",
    "recipes",
    "run",  # sftlab/run.py: train(cfg)
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every sftlab module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sftlab"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sftlab"):
            for alias in node.names:  # `from sftlab.x import y`: y may be a module
                child = f"{node.module}.{alias.name}"
                found.add(child if _exists(child) else node.module)
    return found


def _exists(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # sftlab/__init__.py: the lazy public API may name anything
    return LAYERS.index(parts[1])


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in edges.items():
        own = layer(module)
        for target in targets:
            theirs = layer(target)
            if own is not None and theirs is not None and theirs > own:
                bad.append(
                    f"{module} imports {target} ({LAYERS[theirs]}/ comes after {LAYERS[own]}/)"
                )
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in edges:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_folder_is_a_known_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= set(LAYERS), f"unknown folders: {folders - set(LAYERS)}"


def test_no_folder_imports_from_a_later_folder():
    assert upward_imports(graph()) == []


def test_no_import_cycles_counting_function_level_imports():
    assert cycles(graph()) == []


def test_the_walker_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from sftlab.utils import files\n    import sftlab.config\n")
    assert imports_of(module) == {"sftlab.utils.files", "sftlab.config"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert upward_imports({"sftlab.data.x": {"sftlab.tasks.y"}})


if __name__ == "__main__":
    edges = graph()
    print("\n".join(upward_imports(edges)))
    print(cycles(edges))
