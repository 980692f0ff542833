"""Names a module reads while it is imported before anything binds them: what makes
``import module`` raise NameError. Module-level code only: function and class bodies do not
run on import and are not read; a name bound in any branch of an if or a try counts as bound
after it (the reading errs towards silence, not towards false alarms)."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator

# Names a module can read without binding them.
_ALWAYS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__package__", "__path__"}


def unbound_names(body: list[ast.stmt]) -> list[tuple[str, int]]:
    """(name, line) of each name read before it is bound, once; none after a star import."""
    return _Unbound().module(body)


class _Unbound:
    def __init__(self) -> None:
        self.bound: set[str] = set(_ALWAYS)
        self.missing: list[tuple[str, int]] = []
        self.star = False

    def module(self, body: list[ast.stmt]) -> list[tuple[str, int]]:
        self.block(body)
        return [] if self.star else self.missing

    def read(self, *nodes: ast.AST | None) -> None:
        for node in nodes:
            if node is None:
                continue
            walrus = [n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr)]
            self.bound.update(walrus)
            for name in _loads(node):
                if name.id not in self.bound:
                    self.missing.append((name.id, name.lineno))
                    self.bound.add(name.id)  # reported once

    def bind(self, target: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            self.bound.add(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for item in target.elts:
                self.bind(item)
        elif isinstance(target, ast.Starred):
            self.bind(target.value)
        elif isinstance(target, ast.Attribute | ast.Subscript):
            self.read(target)

    def block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.statement(stmt)

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                self.star = self.star or alias.name == "*"
                self.bound.add(alias.asname or alias.name.partition(".")[0])
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            self.read(*stmt.decorator_list, *stmt.args.defaults, *stmt.args.kw_defaults)
            self.bound.add(stmt.name)
        elif isinstance(stmt, ast.ClassDef):
            self.read(*stmt.decorator_list, *stmt.bases, *(k.value for k in stmt.keywords))
            self.bound.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            self.read(stmt.value)
            for target in stmt.targets:
                self.bind(target)
        elif isinstance(stmt, ast.AnnAssign):  # the annotation may never be evaluated
            self.read(stmt.value)
            self.bind(stmt.target)
        elif isinstance(stmt, ast.AugAssign):  # `x += ...` reads x first
            target = stmt.target
            self.read(ast.Name(target.id, ast.Load(), lineno=stmt.lineno) if isinstance(target, ast.Name) else target)
            self.read(stmt.value)
        elif isinstance(stmt, ast.If | ast.While):
            self.read(stmt.test)
            self.block(stmt.body)
            self.block(stmt.orelse)
        elif isinstance(stmt, ast.For | ast.AsyncFor):
            self.read(stmt.iter)
            self.bind(stmt.target)
            self.block(stmt.body)
            self.block(stmt.orelse)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                self.read(item.context_expr)
                self.bind(item.optional_vars)
            self.block(stmt.body)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            self.block(stmt.body)
            for handler in stmt.handlers:
                self.read(handler.type)
                if handler.name:
                    self.bound.add(handler.name)
                self.block(handler.body)
            self.block(stmt.orelse)
            self.block(stmt.finalbody)
        elif isinstance(stmt, ast.Expr | ast.Assert | ast.Raise | ast.Return):
            self.read(stmt)


def _loads(node: ast.AST) -> Iterator[ast.Name]:
    """The names an expression reads when it is evaluated (a lambda's body and a
    comprehension's inner parts are not, or not in this scope)."""
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Load):
            yield node
        return
    if isinstance(node, ast.Lambda):
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                yield from _loads(default)
        return
    if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
        yield from _loads(node.generators[0].iter)
        return
    for child in ast.iter_child_nodes(node):
        yield from _loads(child)
