"""What the project rules read from a Python file, without running it: the names its module
defines, what it imports, its URL patterns, its settings' string values and the URL names it
reverses. One parse per content, remembered by sha256 (every project of a template repeats
most files byte for byte); the syntax tree itself is not kept."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from engine.lru import LRU
from engine.rules.unbound import unbound_names

_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_REVERSERS = frozenset({"reverse", "reverse_lazy", "redirect", "resolve_url"})


@dataclass(frozen=True)
class Import:
    module: str  # as written, without its leading dots ("" in `from . import views`)
    level: int  # the leading dots: 0 is absolute
    names: tuple[str, ...]  # of `from module import ...`; () for `import module`
    line: int
    guarded: bool  # in a try that catches ImportError, or under TYPE_CHECKING: optional


@dataclass(frozen=True)
class UrlPattern:
    line: int
    name: str | None
    include: str | None = None  # the module of include("module")
    namespace: str | None = None
    view: tuple[str, ...] | None = None  # the view as a dotted chain, calls left out
    opaque: bool = False  # an include this reading cannot follow (a list of patterns)


@dataclass(frozen=True)
class Facts:
    defines: frozenset[str]  # names bound at module level, wherever they are bound
    star: bool  # a `from x import *`: any name may be defined
    bindings: Mapping[str, tuple[str, int, str | None]]  # top-level import: name -> (module, level, attribute)
    imports: tuple[Import, ...]  # every import, functions' too
    undefined: tuple[tuple[str, int], ...]  # read at module level before anything binds them
    app_name: str | None
    patterns: tuple[UrlPattern, ...] | None  # None: the module sets no urlpatterns
    strings: Mapping[str, tuple[str, ...]]  # UPPER_CASE name -> the string constants of its value
    url_names: tuple[tuple[str, int], ...]  # reverse("name") and its kind, with a literal name


_FACTS: LRU[bytes, Facts | None] = LRU(20_000)


def facts_of(data: bytes) -> Facts | None:
    """The file's facts; None when it does not parse (the python rule reports that)."""
    return _FACTS.get_or_make(hashlib.sha256(data).digest(), lambda: _read(data))


def _read(data: bytes) -> Facts | None:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError):
        return None
    defines: set[str] = set()
    bindings: dict[str, tuple[str, int, str | None]] = {}
    strings: dict[str, tuple[str, ...]] = {}
    star = False
    for stmt in _top_level(tree.body):
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                bound = alias.asname or alias.name.partition(".")[0]
                defines.add(bound)
                bindings[bound] = (alias.name if alias.asname else bound, 0, None)
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name == "*":
                    star = True
                    continue
                defines.add(alias.asname or alias.name)
                bindings[alias.asname or alias.name] = (stmt.module or "", stmt.level, alias.name)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defines.add(stmt.name)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            assigned: list[ast.expr] = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            stored = (n for t in assigned for n in ast.walk(t) if isinstance(n, ast.Name))
            for name in (n.id for n in stored if isinstance(n.ctx, ast.Store)):
                defines.add(name)
                if name.isupper() and stmt.value is not None:
                    strings[name] = strings.get(name, ()) + tuple(_strings(stmt.value))
        elif isinstance(stmt, ast.For | ast.With):
            loop_vars = [stmt.target] if isinstance(stmt, ast.For) else [i.optional_vars for i in stmt.items]
            stored = (n for t in loop_vars if t for n in ast.walk(t) if isinstance(n, ast.Name))
            defines.update(n.id for n in stored if isinstance(n.ctx, ast.Store))
    imports, url_names = _scan(tree)
    return Facts(
        defines=frozenset(defines),
        star=star,
        bindings=bindings,
        imports=tuple(imports),
        undefined=tuple(unbound_names(tree.body)),
        app_name=_app_name(tree.body),
        patterns=_patterns(tree.body),
        strings=strings,
        url_names=tuple(url_names),
    )


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import, those in if, try, with and for blocks included."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If | ast.For | ast.While | ast.With):
            yield from _top_level(stmt.body)
            yield from _top_level(getattr(stmt, "orelse", []))
        elif isinstance(stmt, ast.Try | ast.TryStar):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                yield from _top_level(block)


def _strings(node: ast.AST) -> Iterator[str]:
    """String constants of a settings value: items of lists, values of dicts, arguments of
    calls, both branches of a conditional; not dict keys."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        for item in node.elts:
            yield from _strings(item)
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _strings(value)
    elif isinstance(node, ast.Call):
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            yield from _strings(arg)
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)
    elif isinstance(node, ast.BinOp):
        yield from _strings(node.left)
        yield from _strings(node.right)
    elif isinstance(node, ast.Starred):
        yield from _strings(node.value)


def _scan(tree: ast.Module) -> tuple[list[Import], list[tuple[str, int]]]:
    """Every import (guarded or not) and every reversed URL name, in one walk of the tree."""
    imports: list[Import] = []
    names: list[tuple[str, int]] = []
    pending: list[tuple[ast.AST, bool]] = [(tree, False)]
    while pending:
        node, guarded = pending.pop()
        if isinstance(node, ast.Import):
            imports += [Import(alias.name, 0, (), node.lineno, guarded) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names_ = tuple(a.name for a in node.names)
            imports.append(Import(node.module or "", node.level, names_, node.lineno, guarded))
        elif isinstance(node, ast.Call) and node.args and _callee(node) in _REVERSERS:
            name = _text(node.args[0])
            # As resolve_url tells a name from a URL: a URL has a slash or a dot.
            if name and "/" not in name and "." not in name:
                names.append((name, node.lineno))
        body = {id(stmt) for stmt in getattr(node, "body", ())} if _guards(node) else set()
        pending += [(child, guarded or id(child) in body) for child in ast.iter_child_nodes(node)]
    return sorted(imports, key=lambda i: i.line), sorted(names, key=lambda n: n[1])


def _guards(node: ast.AST) -> bool:
    """Whether the imports in ``node``'s body may fail, or never run: a try that catches
    ImportError, an ``if TYPE_CHECKING:``."""
    if isinstance(node, ast.Try | ast.TryStar):
        return any(_catches_import_error(h) for h in node.handlers)
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(c, ast.Name) and c.id in _IMPORT_ERRORS for c in caught)


def _app_name(body: list[ast.stmt]) -> str | None:
    for stmt in body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "app_name" for t in stmt.targets):
            value = stmt.value
            return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
    return None


def _callee(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def chain(node: ast.AST) -> tuple[str, ...] | None:
    """``views.Post.as_view()`` -> ("views", "Post", "as_view"); None for anything else."""
    if isinstance(node, ast.Call):
        return chain(node.func)
    if isinstance(node, ast.Attribute):
        head = chain(node.value)
        return None if head is None else (*head, node.attr)
    return (node.id,) if isinstance(node, ast.Name) else None


def _patterns(body: list[ast.stmt]) -> tuple[UrlPattern, ...] | None:
    found: list[UrlPattern] | None = None
    for stmt in _top_level(body):
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
        target = stmt.target if isinstance(stmt, ast.AugAssign | ast.AnnAssign) else target
        if not (isinstance(target, ast.Name) and target.id == "urlpatterns"):
            continue
        found = found if found is not None else []
        value = getattr(stmt, "value", None)
        if isinstance(value, ast.List | ast.Tuple):
            found += [p for p in map(_pattern, value.elts) if p is not None]
    return None if found is None else tuple(found)


def _pattern(node: ast.expr) -> UrlPattern | None:
    if not isinstance(node, ast.Call) or _callee(node) not in ("path", "re_path"):
        return None
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    name = _text(keywords.get("name"))
    view = node.args[1] if len(node.args) > 1 else keywords.get("view")
    if view is None:
        return UrlPattern(node.lineno, name, opaque=True)
    if isinstance(view, ast.Call) and _callee(view) == "include" and view.args:
        target: ast.expr = view.args[0]
        namespace = _text({k.arg: k.value for k in view.keywords}.get("namespace"))
        if isinstance(target, ast.Tuple | ast.List) and len(target.elts) == 2:  # include((module, app_name))
            namespace = namespace or _text(target.elts[1])
            target = target.elts[0]
        module = _text(target)
        return UrlPattern(node.lineno, name, include=module, namespace=namespace, opaque=module is None)
    return UrlPattern(node.lineno, name, view=chain(view), opaque=chain(view) is None)
