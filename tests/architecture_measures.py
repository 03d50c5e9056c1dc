"""Measures of the code's shape, read from the source with ``ast`` (nothing is imported).

    python tests/architecture_measures.py            # print every measure
    python tests/architecture_measures.py --json     # the same as JSON

``tests/test_architecture.py`` holds the goals these numbers must meet. What is measured:

- **import cycles**: strongly connected components of the graph of ``siyu`` modules, with
  the imports inside functions counted (they run too) and ``if TYPE_CHECKING:`` imports left
  out (they never run);
- **layering**: imports that go the wrong way (a channel importing a service or campaigns,
  a model importing anything above ``models/`` and the ground-floor modules);
- **service constructors** that take the whole workspace instead of naming collaborators;
- ``type: ignore`` comments, public functions annotated to return ``Any``, and functions
  longer than 80 lines in ``services/`` and ``campaigns/``.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "siyu"

#: Modules a model may import: the ground floor.
GROUND_FLOOR = ("siyu.models", "siyu.errors", "siyu.money", "siyu._clock", "siyu._validation", "siyu._text")
#: What every layer may import: errors, money, time, validation, text rules, the converter, the
#: unit of work, URLs, plugin machinery, hook specs, identity rules, field encryption, events.
SHARED_FLOOR = (
    *GROUND_FLOOR, "siyu._convert", "siyu._uow", "siyu._url", "siyu._plugins", "siyu.hookspecs",
    "siyu.identities", "siyu.privacy.keys", "siyu.events",
)
#: What a channel must never import.
ABOVE_CHANNELS = ("siyu.services", "siyu.campaigns", "siyu.workspace", "siyu.segments", "siyu.analytics")
#: Folders whose classes are services.
SERVICE_FOLDERS = ("services", "campaigns", "segments", "analytics", "activities", "wallet", "community")
MAX_FUNCTION_LINES = 80
#: Counts measured before the renovation (``type: ignore`` comments, public functions
#: returning a bare ``Any``); the goal is at most half of each.
BASELINE_TYPE_IGNORES = 53
BASELINE_PUBLIC_ANY_RETURNS = 26


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import that can run, with whether it sits inside a function."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    yield from walk(other, in_function)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from walk(child, inner)

    yield from walk(tree, False)


def _resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                targets.add(_closest(alias.name, known))
        return targets
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    if prefix.split(".")[0] != PACKAGE:
        return targets
    for alias in node.names:
        candidate = f"{prefix}.{alias.name}"
        targets.add(candidate if candidate in known else _closest(prefix, known))
    return targets


def _closest(name: str, known: dict[str, Path]) -> str:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def import_graph(include_function_level: bool = True) -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        for node, in_function in _runtime_imports(tree):
            if in_function and not include_function_level:
                continue
            graph[name] |= {t for t in _resolve(name, is_package, node, known) if t and t != name}
    return graph


def function_level_imports() -> list[str]:
    known = modules()
    found = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, in_function in _runtime_imports(tree):
            if in_function:
                targets = _resolve(name, path.name == "__init__.py", node, known)
                if targets:
                    found.append(f"{name}:{node.lineno} -> {', '.join(sorted(targets))}")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components, key=len, reverse=True)


def wrong_way_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if module.startswith("siyu.channels") and target.startswith(ABOVE_CHANNELS):
                found.append(f"{module} -> {target}")
            if module.startswith("siyu.models") and not target.startswith(GROUND_FLOOR):
                found.append(f"{module} -> {target}")
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports from the storage layer to anything above it (only the shared floor and record
    modules, ``*.models``), and from channels to anything but those and storage."""
    found = []
    for module, targets in sorted(graph.items()):
        if module.startswith("siyu.storage"):
            allowed: tuple[str, ...] = (*SHARED_FLOOR, "siyu.storage")
        elif module.startswith("siyu.channels"):
            allowed = (*SHARED_FLOOR, "siyu.storage", "siyu.channels")
        else:
            continue
        found += [f"{module} -> {t}" for t in sorted(targets) if not (t.startswith(allowed) or t.endswith(".models"))]
    return found


def _annotation_mentions_any(node: ast.expr | None) -> bool:
    if node is None:
        return False
    # ``dict[str, Any]`` says what it is; a bare ``Any`` (or ``Any | None``) says nothing.
    return ast.unparse(node).replace(" ", "") in {"Any", "Any|None", "None|Any", "Optional[Any]"}


def _is_public_module(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split(".")[1:]) and ".testing" not in name


def workspace_constructors(folders: tuple[str, ...] = SERVICE_FOLDERS) -> list[str]:
    """Classes in ``folders`` (the service folders by default) whose ``__init__`` takes the whole workspace."""
    found = []
    for name, path in modules().items():
        if not any(f"siyu.{folder}" in name for folder in folders):
            continue
        for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(cls, ast.ClassDef):
                continue
            for item in cls.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    params = [a for a in item.args.args[1:] + item.args.kwonlyargs]
                    takes_ws = any(
                        a.arg in {"ws", "workspace"}
                        or (a.annotation is not None and "Workspace" in ast.unparse(a.annotation))
                        for a in params
                    )
                    if takes_ws:
                        found.append(f"{name}.{cls.name}")
    return found


def measures() -> dict[str, object]:
    known = modules()
    graph = import_graph()
    type_ignores = 0
    any_returns: list[str] = []
    long_functions: list[str] = []
    for name, path in known.items():
        text = path.read_text(encoding="utf-8")
        type_ignores += text.count("type: ignore")
        tree = ast.parse(text)
        public = _is_public_module(name)
        in_service_folder = name.startswith(("siyu.services", "siyu.campaigns"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if public and not node.name.startswith("_") and _annotation_mentions_any(node.returns):
                any_returns.append(f"{name}.{node.name}:{node.lineno}")
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if in_service_folder and length > MAX_FUNCTION_LINES:
                long_functions.append(f"{name}.{node.name}:{node.lineno} ({length} lines)")
    return {
        "modules": len(known),
        "import_cycles": cycles(graph),
        "import_cycles_module_level": cycles(import_graph(include_function_level=False)),
        "function_level_imports": function_level_imports(),
        "wrong_way_imports": wrong_way_imports(graph),
        "workspace_constructors": workspace_constructors(),
        "type_ignores": type_ignores,
        "public_any_returns": any_returns,
        "long_functions": long_functions,
    }


def main(argv: list[str]) -> int:
    found = measures()
    if "--json" in argv:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0
    for key, value in found.items():
        if isinstance(value, list):
            print(f"{key}: {len(value)}")
            for item in value[:40]:
                print(f"    {item if not isinstance(item, list) else f'{len(item)} modules: ' + ', '.join(item)}")
        else:
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
