"""Error pages rendered once: which templates can be, and how the request's part is filled in.

Theory of operation
-------------------
A 404 flood (scanners, broken links) would render the same template for every request.
Most error templates show only what the error is (status, phrase, description) and perhaps
the request's path and method, so ``fixed_shape`` reads the template's source (and every
template it extends, includes or imports) and accepts it only when the page cannot depend
on anything else:

- every name it reads is ``status``, ``error``, ``description``, ``traceback``, ``path`` or
  ``request``, or one of Jinja's own (``self``, ``super``, ``loop``) or a name the template
  itself binds;
- ``path``, ``request.path`` and ``request.method`` (the *slots*) appear only directly as
  ``{{ ... }}`` output, never in a test, a filter, a loop or an assignment, and ``request``
  is used for nothing else;
- nothing is called but blocks (``self.title()``, ``super()``); filters and tests are
  Jinja's built-ins (not ``random``); no ``{% autoescape %}``, ``{% filter %}`` or block
  ``{% set %}``; autoescaping is on for every template of the chain.

Such a page is rendered once with a marker in each slot and kept as an ``ErrorPage``: the
constant pieces with the slots between them, filled per request with the values escaped
exactly as Jinja's autoescape would (``markupsafe.escape``). Anything else renders every
time, as before.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import jinja2
    from jinja2 import nodes

__all__ = ["ErrorPage", "fixed_shape", "shape_context", "PATH_MARK", "METHOD_MARK"]

#: Stand-ins rendered in the slots: NUL-delimited, so escaping leaves them alone.
PATH_MARK = "\x00microweb-error-page:path\x00"
METHOD_MARK = "\x00microweb-error-page:method\x00"
_SLOTS = {PATH_MARK: 0, METHOD_MARK: 1}
_SPLIT = re.compile("(" + "|".join(re.escape(mark) for mark in _SLOTS) + ")")
#: Names a fixed-shape page may read (beside the slots and the names it binds itself).
#: What ``markupsafe.escape`` changes: a value without any of these goes in as it is.
_UNSAFE = re.compile("[&<>\"']").search
_CONSTANT_NAMES = frozenset({"status", "error", "description", "traceback", "self", "super", "loop"})
_REQUEST_SLOTS = frozenset({"path", "method"})


class ErrorPage:
    """A rendered page with holes for the request's path and method: ``fill`` puts them in."""

    __slots__ = ("pieces", "slots", "escape")

    def __init__(self, html: str) -> None:
        import markupsafe

        self.escape = markupsafe.escape
        pieces = [piece for piece in _SPLIT.split(html) if piece]
        #: (index into ``pieces``, 0 for the path or 1 for the method) for every slot.
        self.slots = tuple((i, _SLOTS[piece]) for i, piece in enumerate(pieces) if piece in _SLOTS)
        self.pieces = pieces

    def fill(self, path: str, method: str) -> bytes:
        values = (path if _UNSAFE(path) is None else str(self.escape(path)),
                  method if _UNSAFE(method) is None else str(self.escape(method)))
        pieces = self.pieces.copy()
        for i, slot in self.slots:
            pieces[i] = values[slot]
        # A path that is not UTF-8 (%ff) reaches the page as surrogates: never let it turn a 404 into a 500.
        return "".join(pieces).encode("utf-8", "backslashreplace")


class _Stand_in:
    """What a fixed-shape template sees as ``request``: the two attributes it may read."""

    __slots__ = ("path", "method")

    def __init__(self) -> None:
        self.path = PATH_MARK
        self.method = METHOD_MARK


def shape_context(status: int, error: str, description: str | None) -> dict[str, Any]:
    """The context the one render of a fixed-shape page gets: markers in the slots."""
    return {"status": status, "error": error, "description": description, "traceback": None,
            "path": PATH_MARK, "request": _Stand_in()}


def fixed_shape(env: jinja2.Environment, template: jinja2.Template) -> bool:
    """Whether ``template`` (with all it extends, includes, imports) is a fixed-shape page."""
    seen: set[str] = set()
    pending = [template.name]
    while pending:
        name = pending.pop()
        if name is None:
            return False  # a template name computed at render time
        if name in seen:
            continue
        seen.add(name)
        try:
            source, filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
            tree = env.parse(source, name, filename)
        except Exception:
            return False
        autoescape = env.autoescape(name) if callable(env.autoescape) else env.autoescape
        if not autoescape or not _fixed_tree(env, tree):
            return False
        from jinja2 import meta

        pending.extend(meta.find_referenced_templates(tree))  # type: ignore[arg-type]
    return True


def _fixed_tree(env: jinja2.Environment, tree: nodes.Template) -> bool:
    import jinja2.filters
    import jinja2.tests
    from jinja2 import nodes

    bound = {node.name for node in tree.find_all(nodes.Name) if node.ctx != "load"}
    if bound & {"path", "request"}:
        return False
    if any(True for _ in tree.find_all((nodes.EvalContextModifier, nodes.FilterBlock, nodes.AssignBlock))):
        return False
    for node, parent in _walk(tree, None):
        kind = type(node)
        if kind is nodes.Name:
            name = node.name
            if name == "path":
                if type(parent) is not nodes.Output:
                    return False
            elif name == "request":
                if type(parent) is not nodes.Getattr or parent.attr not in _REQUEST_SLOTS:  # type: ignore[attr-defined]
                    return False
            elif name not in _CONSTANT_NAMES and name not in bound:
                return False
        elif kind is nodes.Getattr and type(node.node) is nodes.Name and node.node.name == "request":
            if type(parent) is not nodes.Output:
                return False
        elif kind is nodes.Call:
            callee = node.node
            if not ((type(callee) is nodes.Getattr and type(callee.node) is nodes.Name and callee.node.name == "self")
                    or (type(callee) is nodes.Name and callee.name == "super")):
                return False
        elif kind is nodes.Filter:
            if node.name == "random" or env.filters.get(node.name) is not jinja2.filters.FILTERS.get(node.name):
                return False
        elif kind is nodes.Test:
            if env.tests.get(node.name) is not jinja2.tests.TESTS.get(node.name):
                return False
        elif isinstance(node, (nodes.CallBlock, nodes.Macro, nodes.ExtensionAttribute, nodes.InternalName,
                               nodes.ImportedName, nodes.ContextReference, nodes.DerivedContextReference)):
            return False
    return True


def _walk(node: nodes.Node, parent: nodes.Node | None) -> Iterator[tuple[nodes.Node, nodes.Node | None]]:
    yield node, parent
    for child in node.iter_child_nodes():
        yield from _walk(child, node)
