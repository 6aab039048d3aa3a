"""Layering: the library never imports a method plugin, and no method imports another method.

Shared building blocks (FAME's mask and merge, BE's distractors, the derangement, MoCo with extra negatives) live in
`scenebias/`; a method file composes them. Every import statement counts, at module level or inside a function, and
so do `importlib.import_module` / `__import__` calls with a literal name. The built-in methods are found like
any other plugin, through the `scenebias.methods` entry point of their installed package `scenebias_methods`
(the methods/ folder; pyproject.toml), so the loader imports no method either.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOADER = "scenebias/plugins.py"
METHOD_PACKAGES = ("methods", "scenebias_methods")  # the folder's name and its installed name


def _module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _literal_prefix(node: ast.expr) -> str | None:
    """The literal start of a module name given as a string or an f-string, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return None


def imports(source: str, rel: str) -> list[tuple[int, str, int]]:
    """Every module a file imports: (line, absolute module name, relative level as written), relative imports
    resolved against the file's package; `from pkg import name` also yields `pkg.name` (it may be a module)."""
    package = _module_name(rel) if rel.endswith("__init__.py") else _module_name(rel).rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, filename=rel)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join(p for p in [*anchor, node.module or ""] if p)
            found.append((node.lineno, base, node.level))
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name, node.level)
                      for alias in node.names]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            literal = _literal_prefix(node.args[0])
            if name in ("import_module", "__import__") and literal is not None:
                found.append((node.lineno, literal, 0))
    return found


def _is_methods(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in METHOD_PACKAGES)


def _report(rel: str, hits: list[tuple[int, str]]) -> list[str]:
    first = {}
    for line, module in hits:
        first.setdefault(line, module)  # one per statement: `from pkg import name` yields pkg and pkg.name
    return [f"{rel}:{line}: imports {module!r}" for line, module in first.items()]


def library_violations(source: str, rel: str) -> list[str]:
    return _report(rel, [(line, module) for line, module, _ in imports(source, rel)
                         if _is_methods(module)])


def method_violations(source: str, rel: str) -> list[str]:
    """A method (or an example plugin) may import the library and third-party packages, never a method module:
    no `import methods.x`, `from methods import x`, `from . import x`, `from .x import y`."""
    return _report(rel, [(line, module) for line, module, level in imports(source, rel)
                         if _is_methods(module) or level > 0])


def _files(*folders: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_the_library_imports_no_method():
    files = _files("scenebias")
    assert LOADER in files and len(files) > 20
    hits = [hit for rel in files for hit in library_violations((ROOT / rel).read_text(), rel)]
    assert not hits, ("scenebias/ imports a method plugin; move the shared code into the library "
                      "(scenebias/augment/, scenebias/train/moco.py):\n" + "\n".join(hits))


def test_no_method_imports_another():
    files = _files("methods", "examples")
    assert "methods/fame.py" in files and "methods/mix.py" in files
    hits = [hit for rel in files for hit in method_violations((ROOT / rel).read_text(), rel)]
    assert not hits, ("a method imports another method; import the shared block from scenebias/ and extend a method "
                      "with register_method(..., parent=...) or register_preset:\n" + "\n".join(hits))


@pytest.mark.parametrize("source, rel, checker", [
    ("def f():\n    from methods.fame import foreground_mask\n", "scenebias/analysis/cam.py", library_violations),
    ("from methods.be import distract\n", "scenebias/train/pretext.py", library_violations),
    ("import methods.fame as fame\n", "scenebias/x.py", library_violations),
    ("import importlib\nimportlib.import_module('methods.be')\n", "scenebias/x.py", library_violations),
    ("from methods import be\n", LOADER, library_violations),
    ("import methods as builtin\nimportlib.import_module(f'methods.{n}')\n", LOADER, library_violations),
    ("import scenebias_methods.fame\n", "scenebias/x.py", library_violations),
    ("from .fame import derangement\n", "methods/be.py", method_violations),
    ("from . import be  # noqa\n", "methods/mix.py", method_violations),
    ("from .moco import MOCO_DEFAULTS\n", "methods/dsm.py", method_violations),
    ("from methods.moco import MocoObjective\n", "examples/scenebias-reverse/scenebias_reverse/__init__.py",
     method_violations),
])
def test_the_checks_catch_the_old_imports(source, rel, checker):
    """The patterns this layering removed (function-local imports of FAME's mask, BE's `distract` in the pretext
    base, methods importing each other for MoCo's defaults, the derangement and a preset's base) are caught."""
    assert checker(source, rel)


def test_the_checks_allow_the_library_and_the_loader():
    assert not method_violations("from scenebias.augment.foreground import merge\nimport torch\n", "methods/fame.py")
    assert not library_violations("from ..augment import foreground\nfrom .moco import MoCo\n",
                                  "scenebias/train/pretext.py")
    assert not method_violations("from scenebias.plugins import import_plugin_modules\n", "methods/__init__.py")


def test_the_installed_packages_are_every_package_on_disk():
    """pyproject.toml lists the packages (the methods/ folder installs as `scenebias_methods`): a new subpackage
    of scenebias/ must be listed, or an installed suite would lack it."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {_module_name(str(p.relative_to(ROOT))) for p in (ROOT / "scenebias").rglob("__init__.py")}
    assert set(setup["packages"]) == on_disk | {"scenebias_methods"}
    assert setup["package-dir"] == {"scenebias_methods": "methods"}
