"""The parameters of a ``_target_`` read from its source file, without importing it.

The config check (``sftlab.config.checks``) compares every ``trainer.*``, ``optimizer.*`` and
``scheduler.*`` value with the signature of the class or function it is passed to. Importing
``lightning`` to read ``Trainer.__init__`` costs about 10 s on a 2-core CPU (torch, dynamo,
torchmetrics, scipy), which a typo should not cost. This module finds the definition with
``ast`` instead, following ``from X import name`` re-exports, and evaluates each annotation with
the typing names; a name it cannot know (``Tensor``, ``Accelerator``) becomes an opaque type
that no config value (a number, string, list or dict) is an instance of. Anything it cannot read
(a definition built at run time, an inherited ``__init__``) returns None, and the caller falls
back to importing the target.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

MAX_HOPS = 6  # re-exports followed before giving up (lightning.pytorch.Trainer takes 1)


class Signature(typing.NamedTuple):
    params: dict[str, inspect.Parameter]  # name -> parameter with an evaluated annotation
    open_ended: bool  # takes **kwargs


def static_signature(target: str) -> Signature | None:
    """``target``'s parameters (``__init__``'s for a class), or None when not readable."""
    module, _, name = target.rpartition(".")
    for _ in range(MAX_HOPS):
        tree = _parse(module)
        if tree is None:
            return None
        found = _definition(tree, name)
        if isinstance(found, ast.ClassDef):
            inits = [
                n for n in found.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"
            ]
            init = inits[-1] if inits else None  # the last one: @overload stubs come first
            return _signature(init, module) if init is not None else None
        if isinstance(found, ast.FunctionDef):
            return _signature(found, module)
        source = _reexport(tree, module, name)
        if source is None:
            return None
        module, name = source
    return None


@functools.cache
def _parse(module: str) -> ast.Module | None:
    path = _module_file(module)
    if path is None:
        return None
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


@functools.cache
def _module_file(module: str) -> Path | None:
    """The source file of ``a.b.c``, found from the top package's folder: ``find_spec`` of a
    submodule would import its parents, which is what this module avoids."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    if not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest[:-1])
    for path in (folder / rest[-1] / "__init__.py", folder / f"{rest[-1]}.py"):
        if path.is_file():
            return path
    return None


def _definition(tree: ast.Module, name: str) -> ast.AST | None:
    """The last top-level class or function ``name`` (as at run time: @overload stubs first)."""
    found = None
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            found = node
    return found


def _reexport(tree: ast.Module, module: str, name: str) -> tuple[str, str] | None:
    """Where ``from X import name [as alias]`` in ``module`` takes ``name`` from."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _absolute(module, node), alias.name
    return None


def _signature(fn: ast.FunctionDef, module: str) -> Signature:
    args = fn.args
    names = _Names(module)
    params: dict[str, inspect.Parameter] = {}
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        kind = (
            inspect.Parameter.KEYWORD_ONLY
            if arg in args.kwonlyargs
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        annotation = _evaluate(arg.annotation, names)
        params[arg.arg] = inspect.Parameter(arg.arg, kind, annotation=annotation)
    return Signature(params, open_ended=args.kwarg is not None)


class _Opaque(type):
    """A class named in an annotation (``Tensor``, ``Accelerator``, ``Path``): no value a
    config holds (a number, string, list or dict) is an instance of it."""

    def __getitem__(cls, item: Any) -> Any:  # Callback[...], a generic class
        return cls


def _opaque(name: str) -> type:
    return _Opaque(name, (), {"__module__": "builtins"})  # repr: plain "Tensor"


class _Module:
    """A module an annotation names (``torch.Tensor``, ``pl.accelerators.Accelerator``)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return _resolve(self._name, attr, 0)


class _Names(dict):
    """The names an annotation in ``module`` can see, resolved from the source on demand:
    typing's names and the builtins, then the module's own classes, aliases and imports."""

    def __init__(self, module: str, depth: int = 0):
        super().__init__(typing=typing)
        self.module, self.depth = module, depth

    def __missing__(self, key: str) -> Any:
        if key in {"Any", "Optional", "Union", "Literal"} or (
            hasattr(typing, key) and not hasattr(builtins, key)
        ):
            return getattr(typing, key)
        value = _resolve(self.module, key, self.depth)
        if value is Any and isinstance(getattr(builtins, key, None), type):
            return getattr(builtins, key)  # int, float, str, list, ...: types, no functions
        return value


def _statements(body: list[ast.stmt]) -> typing.Iterator[ast.stmt]:
    """Top-level statements, including those under ``if TYPE_CHECKING:`` and ``try:``."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _statements(node.body)
            yield from _statements(node.orelse)
        elif isinstance(node, ast.Try):
            yield from _statements(node.body)


def _resolve(module: str, name: str, depth: int) -> Any:
    """What ``name`` is in ``module``: an opaque class, an alias's value, or a submodule;
    ``Any`` (unchecked) when the source does not say."""
    key = (module, name)
    if key in _CACHE:
        return _CACHE[key]
    _CACHE[key] = Any  # a cycle resolves to unchecked
    value = Any if depth > MAX_DEPTH else _find(module, name, depth)
    _CACHE[key] = value
    return value


def _find(module: str, name: str, depth: int) -> Any:
    loaded = sys.modules.get(module)
    if loaded is not None and hasattr(loaded, name):  # imported already: no reading needed
        return getattr(loaded, name)  # (typing as t, from typing import Optional as Opt, Path)
    tree = _parse(module)
    if tree is not None:
        for node in _statements(tree.body):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                return _opaque(name)
            value = _assigned(node, name)
            if value is not None:
                return _evaluate(value, _Names(module, depth + 1))
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        source = _absolute(module, node)
                        if _module_file(f"{source}.{alias.name}") is not None:
                            return _Module(f"{source}.{alias.name}")
                        return _resolve(source, alias.name, depth + 1)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    if bound == name:
                        return _Module(alias.name if alias.asname else bound)
    if _module_file(f"{module}.{name}") is not None:
        return _Module(f"{module}.{name}")
    return Any


def _assigned(node: ast.stmt, name: str) -> ast.expr | None:
    if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in node.targets
    ):
        return node.value
    if (
        isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == name
        and node.value is not None
    ):
        return node.value
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    path = _module_file(module)
    parts = module.split(".")
    base = parts if path is not None and path.name == "__init__.py" else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _evaluate(node: ast.expr | None, names: _Names) -> Any:
    """An annotation's value; ``inspect.Parameter.empty`` (unchecked) when it cannot be had.
    The text is an installed package's own annotation (code that package runs when imported
    anyway), evaluated with no builtins but types; its names resolve to typing's objects,
    builtin types, objects of modules already imported, opaque classes and other aliases."""
    if node is None:
        return inspect.Parameter.empty
    try:
        value = eval(ast.unparse(node), {"__builtins__": {}}, names)  # noqa: S307
    except Exception:  # noqa: BLE001 - an annotation this reader cannot evaluate: unchecked
        return inspect.Parameter.empty
    if isinstance(value, str):  # a quoted forward reference: "Logger"
        try:
            return _evaluate(ast.parse(value, mode="eval").body, names)
        except SyntaxError:
            return inspect.Parameter.empty
    if isinstance(value, _Module):
        return inspect.Parameter.empty
    return value


MAX_DEPTH = 8
_CACHE: dict[tuple[str, str], Any] = {}
