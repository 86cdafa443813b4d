"""The architecture, checked: three layers, no import cycles.

Every module of the package is parsed with ``ast`` and every import is read:
top-level ones, ones inside functions and methods, and ones under
``if TYPE_CHECKING:``. Then:

- no cycle among the package's modules, whatever kind of import closes it;
- ``socket``, ``selectors``, ``ssl`` and ``signal`` are imported only under ``microweb/server/``;
- ``microweb/http/`` imports only the standard library and ``microweb.http``;
- ``microweb/server/`` imports only the standard library (and ``watchfiles`` when installed),
  ``microweb.http`` and ``microweb.server``.

The checks run on the real tree and, to show they can fail, on small graphs
that hold the cycles the package used to have.
"""
from __future__ import annotations

import ast
import os
import sys

import pytest

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "microweb")
SERVER_ONLY = frozenset({"socket", "selectors", "ssl", "signal"})
SERVER_OPTIONAL = frozenset({"watchfiles"})  # used by --reload when installed

Graph = dict[str, set[str]]


def module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def package_modules() -> dict[str, str]:
    """Module name -> file path, for every ``.py`` file of the package."""
    found = {}
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__" and d != "templates"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                found[module_name(path)] = path
    return found


def imports_of(name: str, path: str, modules: dict[str, str]) -> set[str]:
    """Every module ``name`` imports (absolute names), wherever in the file the import is."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith("__init__.py")
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # ``from . import x`` / ``from .http import parser``: x may be a module
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
    return found


def import_graph() -> tuple[Graph, Graph]:
    """(edges between the package's own modules, every import of each module)."""
    modules = package_modules()
    everything = {name: imports_of(name, path, modules) for name, path in modules.items()}
    internal = {name: {t for t in targets if t in modules and t != name} for name, targets in everything.items()}
    return internal, everything


def find_cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def layer_violations(everything: Graph) -> list[str]:
    stdlib = sys.stdlib_module_names
    problems = []
    for name, targets in sorted(everything.items()):
        in_server = name == "microweb.server" or name.startswith("microweb.server.")
        in_http = name == "microweb.http" or name.startswith("microweb.http.")
        for target in sorted(targets):
            top = target.split(".")[0]
            if top in SERVER_ONLY and not in_server:
                problems.append(f"{name} imports {target}: only microweb.server may")
            internal = top == "microweb"
            if in_http and not (target == "microweb.http" or target.startswith("microweb.http.")
                                or (not internal and top in stdlib)):
                problems.append(f"{name} imports {target}: the protocol layer imports only itself and the stdlib")
            if in_server and internal and not target.startswith(("microweb.http", "microweb.server")):
                problems.append(f"{name} imports {target}: the server does not import the framework")
            if in_server and not internal and top not in stdlib and top not in SERVER_OPTIONAL:
                problems.append(f"{name} imports {target}: the server imports only the stdlib")
    return problems


def test_the_package_has_no_import_cycle() -> None:
    internal, _ = import_graph()
    assert len(internal) > 30  # the walk found the package (a broken walk would pass vacuously)
    assert find_cycles(internal) == []


def test_the_layers_import_only_downwards() -> None:
    _, everything = import_graph()
    assert layer_violations(everything) == []


def test_function_level_and_type_checking_imports_are_seen() -> None:
    internal, _ = import_graph()
    assert "microweb.forms" in internal["microweb.requests"]  # imported inside Request._parse_form
    assert "microweb.server.start" in internal["microweb.app"]  # imported inside App.run
    assert "microweb.server.tls" in internal["microweb.server.start"]  # only for HTTPS


@pytest.mark.parametrize("cycle", [
    ["microweb.forms", "microweb.multipart", "microweb.requests"],
    ["microweb.server.reactor", "microweb.server.pool"],
    ["microweb.debug", "microweb.server.reload", "microweb.cli"],
    ["microweb.app", "microweb.testing"],
])
def test_a_cycle_of_the_old_layout_would_be_caught(cycle: list[str]) -> None:
    internal, _ = import_graph()
    graph = {name: set(targets) for name, targets in internal.items()}
    for a, b in zip(cycle, cycle[1:] + cycle[:1]):  # close the loop: each imports the next
        graph[a].add(b)
    assert any(set(cycle) <= set(component) for component in find_cycles(graph))


def test_a_socket_import_in_the_framework_or_the_protocol_is_caught() -> None:
    _, everything = import_graph()
    graph = {name: set(targets) for name, targets in everything.items()}
    graph["microweb.app"].add("socket")
    graph["microweb.http.parser"].add("microweb.requests")
    graph["microweb.http.encode"].add("microweb.server.reactor")
    graph["microweb.server.reactor"].add("microweb.app")
    problems = layer_violations(graph)
    assert "microweb.app imports socket: only microweb.server may" in problems
    assert any(p.startswith("microweb.http.parser imports microweb.requests") for p in problems)
    assert any(p.startswith("microweb.http.encode imports microweb.server.reactor") for p in problems)
    assert any(p.startswith("microweb.server.reactor imports microweb.app") for p in problems)


def test_the_old_deep_imports_still_work() -> None:
    """``microweb.reactor`` and ``microweb.http11`` stay for one release as thin aliases."""
    from microweb import Request
    from microweb.http11 import RequestParser
    from microweb.reactor import Server
    from microweb.server.reactor import Server as NewServer

    assert issubclass(Server, NewServer)
    [request] = RequestParser().receive(b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert type(request) is Request and request.args["b"] == "1"
