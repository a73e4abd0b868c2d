"""The code's shape, read from the source with ``ast`` (nothing imported or run): small
modules and functions; the folder tree is the architecture (each subpackage says what
it may import, and does only that); no import cycle, TYPE_CHECKING imports included;
one gate; adapters built by their constructors."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "supervisor"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = ast.parse(path.read_text(), str(path))
    return out


def module_imports(tree: ast.Module) -> set[str]:
    """Modules of the package imported at import time, TYPE_CHECKING blocks included
    (an import inside a function is a deliberate late import and does not count)."""
    found: set[str] = set()
    body = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.If):
            body += node.body + node.orelse
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
            "supervisor"
        ):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("supervisor"))
    return found


def part(module: str) -> str:
    """The subpackage a (dotted) name belongs to ('' for the package's own modules)."""
    pieces = module.split(".")
    is_part = len(pieces) > 1 and (PACKAGE / pieces[1] / "__init__.py").exists()
    return pieces[1] if is_part else ""


def declared() -> dict[str, set[str]]:
    """{part: the parts its __init__ says it may import}."""
    out = {}
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        match = re.search(r"^May import: ([^.]*)\.", doc, re.M)
        assert match, f"{init.relative_to(ROOT)} does not say what it may import"
        names = {n.strip() for n in match.group(1).split(",")} - {"nothing"}
        out[init.parent.name] = names
    return out


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_too_long() -> None:
    long = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_every_part_says_what_it_owns_and_holds_no_code() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), init
        assert len(tree.body) == 1, f"{init.relative_to(ROOT)}: only its docstring"


def test_parts_import_only_what_they_declare() -> None:
    allowed = declared()
    trees = modules()
    wrong = []
    for name, tree in trees.items():
        here = part(name)
        if not here:
            continue
        for imported in module_imports(tree):
            there = part(imported)
            if there and there != here and there not in allowed[here]:
                wrong.append(f"{name} imports {imported} ({here} may not import {there})")
    assert wrong == []


def test_the_declared_parts_form_no_cycle() -> None:
    graph = declared()
    unknown = {p for deps in graph.values() for p in deps} - set(graph)
    assert unknown == set()
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        assert node not in visiting, " -> ".join([*path, node])
        if node in done:
            return
        visiting.add(node)
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        visiting.discard(node)
        done.add(node)

    for start in sorted(graph):
        visit(start, [])


def test_no_import_cycle_between_modules() -> None:
    trees = modules()
    known = set(trees)
    graph = {name: (module_imports(tree) & known) - {name} for name, tree in trees.items()}
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in path and len(path) < 10:
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []


def test_the_app_preflight_is_run_from_the_gate_only() -> None:
    """(and from the warm preflight, which the gate runs, when it falls back to cold)"""
    callers = set()
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else (
                    func.attr if isinstance(func, ast.Attribute) else ""
                )
                if called == "preflight":
                    callers.add(name)
    assert callers == {"supervisor.reload.gate", "supervisor.reload.warm"}


def test_no_driver_is_changed_from_outside() -> None:
    """Adapters are fully built by their constructors: nothing assigns to a driver's
    attributes except the driver itself."""
    assigned = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            )
            for target in targets:
                if isinstance(target, ast.Attribute) and _names_a_driver(target.value):
                    assigned.append(f"{name}:{node.lineno} {ast.unparse(target)}")
    assert assigned == []


def _names_a_driver(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "driver" or node.id.endswith("_driver")
    return isinstance(node, ast.Attribute) and node.attr == "driver"


#: where an app server may be named: the composition root, the config and its checks,
#: `fnud init` (it adopts a uWSGI deployment: its command and its part), each adapter,
#: and nginx's (its own uwsgi_pass module and temp path)
NAMING_A_SERVER = (
    "supervisor.stack.plan", "supervisor.config", "supervisor.checks", "supervisor.adopt",
    "supervisor.cli.admin", "supervisor.uwsgi", "supervisor.gunicorn", "supervisor.nginx",
)
SERVER_NAMES = re.compile(r"uwsgi|gunicorn", re.I)


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (prose may name anything)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _names(node: ast.AST) -> list[str]:
    """The identifiers and string values ``node`` itself carries."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword):
        return [node.arg or ""]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    return []


def test_only_the_composition_root_config_checks_and_adapters_name_a_server() -> None:
    """Everything else (the daemon, the gate, generations, status, health, the page)
    talks to the app server through appserver.port: no identifier or string there
    names uWSGI or gunicorn (docstrings and comments may)."""
    named = []
    for name, tree in modules().items():
        if name.startswith(NAMING_A_SERVER):
            continue
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            if id(node) in prose:
                continue
            for text in _names(node):
                if SERVER_NAMES.search(text):
                    named.append(f"{name}:{getattr(node, 'lineno', '?')} {text[:60]!r}")
    assert named == [], "\n".join(named)
