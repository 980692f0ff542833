"""A rendered project's Python modules by dotted name, and what resolving a name among them
finds: the rules' view of ``import``, without importing anything."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from engine.rules.source import Facts, Import, facts_of
from engine.tree import Tree

STDLIB = frozenset(sys.stdlib_module_names)


def module_name(rel: str) -> str | None:
    """``a/b/c.py`` -> ``a.b.c``, ``a/__init__.py`` -> ``a``; None for what no import reaches."""
    if not rel.endswith(".py"):
        return None
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None


class Modules:
    """The modules under ``root`` (a project directory, "" or ending in "/"), as Python run
    from that directory imports them."""

    def __init__(self, files: Tree, root: str = "") -> None:
        self.files, self.root = files, root
        self.paths: dict[str, str] = {}  # dotted name -> path in the tree
        self.packages: set[str] = set()  # directories that hold modules (namespace packages too)
        for rel in files:
            name = module_name(rel[len(root) :]) if rel.startswith(root) else None
            if name is None:
                continue
            self.paths[name] = rel
            parts = name.split(".")
            self.packages.update(".".join(parts[:i]) for i in range(1, len(parts)))
        self.top = frozenset(n.partition(".")[0] for n in [*self.paths, *self.packages])
        self._facts: dict[str, Facts | None] = {}  # the rules ask for a module many times

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(module, path) in path order."""
        return iter(sorted(self.paths.items(), key=lambda item: item[1]))

    def facts(self, module: str) -> Facts | None:
        if module not in self._facts:
            rel = self.paths.get(module)
            self._facts[module] = None if rel is None else facts_of(self.files[rel].data)
        return self._facts[module]

    def is_local(self, dotted: str) -> bool:
        return dotted.partition(".")[0] in self.top

    def exists(self, module: str) -> bool:
        return module in self.paths or module in self.packages

    def defines(self, module: str, name: str) -> bool:
        """Whether ``from module import name`` finds something (a submodule counts)."""
        if self.exists(f"{module}.{name}"):
            return True
        if module not in self.paths:
            return False  # a directory without __init__.py: only submodules
        facts = self.facts(module)
        if facts is None:
            return True  # does not parse: the python rule says so, not this one
        return facts.star or name in facts.defines or "__getattr__" in facts.defines

    def find(self, dotted: str) -> str | None:
        """None when ``dotted`` names a module of the project or something one defines;
        else what is missing."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            module = ".".join(parts[:end])
            if self.exists(module):
                if end == len(parts) or self.defines(module, parts[end]):
                    return None
                return f"{module} defines no {parts[end]}"
        return f"the project has no module {parts[0]}"

    def absolute(self, importer: str, imp: Import) -> str | None:
        """The module an import in ``importer`` names; None for a relative import that climbs
        out of the project."""
        if imp.level == 0:
            return imp.module
        is_package = self.paths.get(importer, "").endswith("__init__.py")
        package = importer if is_package else importer.rpartition(".")[0]
        parts = package.split(".") if package else []
        if imp.level > len(parts):
            return None
        base = parts[: len(parts) - (imp.level - 1)]
        return ".".join([*base, imp.module] if imp.module else base) or None

    def local_problem(self, importer: str, imp: Import) -> str | None:
        """What is wrong with an import of a project module; None if it resolves, or if it
        is not one (a library's import is the dependency rule's)."""
        target = self.absolute(importer, imp)
        if target is None:
            return f"line {imp.line}: a relative import climbs out of the project"
        if imp.level == 0 and not self.is_local(target):
            return None
        if not self.exists(target):
            return f"line {imp.line}: imports {target}, which is not in the project"
        missing = [n for n in imp.names if n != "*" and not self.defines(target, n)]
        if missing:
            return f"line {imp.line}: imports {', '.join(missing)} from {target}, which does not define it"
        return None
