"""The project's import graph, read from source with `ast` (nothing is imported).

Every `import x.y` and `from x import y` inside the four packages becomes an edge
between modules; relative imports are resolved against the importing module, and
`from pkg import name` counts as importing `pkg.name` when that is a module.
Imports inside functions count too: a deferred import still ties the two modules
together, and hiding a circle inside a function is how circles used to grow here.
`importlib.import_module("literal")` counts as an import for the same reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("api", "workers", "core", "cli")


def module_files(root: Path) -> dict[str, Path]:
    """Module name -> file for every .py file under the project's packages."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules that `module` imports (anywhere in the file)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    wanted: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                wanted.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            for alias in node.names:
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
                wanted.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            wanted.add(node.args[0].value)
    found: set[str] = set()
    for name in wanted:
        # `import core.media.model` imports the module itself; the packages above it
        # are only run for their __init__, which carries no code here.
        if name in modules and name != module:
            found.add(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = module_files(root)
    names = set(files)
    return {name: imports_of(name, path, names) for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# (importer package, forbidden package, why)
FORBIDDEN = [
    ("core", "api", "core never imports the API"),
    ("core", "workers", "core never imports the workers"),
    ("core", "cli", "core never imports the CLI"),
    ("core.media", "core.live", "core/media sits below core/live"),
    ("core.media", "core.services", "core/media sits below core/services"),
]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            for low_pkg, high_pkg, why in FORBIDDEN:
                if _under(module, low_pkg) and _under(target, high_pkg):
                    found.append(f"{module} -> {target} ({why})")
            if (
                module.startswith("api.routers.")
                and target.startswith("api.routers.")
            ):
                found.append(f"{module} -> {target} (a router never imports another router)")
    return found


if __name__ == "__main__":
    import sys

    graph = import_graph(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
    for c in circles(graph):
        print("circle:", " <-> ".join(c))
    for line in upward_imports(graph):
        print("upward:", line)
