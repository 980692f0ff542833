"""Verify a rendered project before it is exported: every expected output is there, and
every Python, JSON (and JSONC), YAML and TOML file parses as what its format really is.
Works on files held in memory, so the activities need no directory to write first.

What verify finds is a list of findings (path, rule, severity). Only errors fail a run:
a missing expected output, a failed check, and, for forgeflow's own templates only, a file
that does not parse. A third-party template's files that do not parse are warnings: the
tool that reads them may know better (a JSONC dialect, a YAML tag, a Python newer than the
worker's), and that template's own ``checks`` are what can tell."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal, cast

import pyjson5
import yaml

from engine.lru import LRU
from engine.pyversion import DeclaredPythons, Version
from engine.templates import BUILTIN_TEMPLATES_DIR, Template
from engine.tree import Tree

Severity = Literal["error", "warning"]
# How many findings a result lists (errors first) and how long a message is: the result
# travels in workflow payloads and run records, and one broken template can have thousands.
MAX_FINDINGS = 100
MAX_MESSAGE = 300


@dataclass(frozen=True)
class Finding:
    path: str  # the file, or "" for what concerns no one file (a check)
    rule: str  # python, json, jsonc, json5, yaml, toml, expected-output, check, or a project rule (engine.rules)
    severity: Severity
    message: str


@dataclass
class Verification:
    ok: bool = True
    files_checked: int = 0  # files a rule parsed
    errors: list[str] = field(default_factory=list)  # each error, naming its path
    findings: list[Finding] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # the project rules that ran (engine.rules)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
        if finding.severity == "error":
            self.ok = False
            self.errors.append(f"{finding.path}: {finding.message}" if finding.path else finding.message)

    def fail(self, message: str, *, path: str = "", rule: str = "check") -> None:
        self.add(Finding(path, rule, "error", message))

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    def listed(self) -> list[Finding]:
        """The first MAX_FINDINGS findings, errors before warnings, otherwise in the order found."""
        return sorted(self.findings, key=lambda f: f.severity != "error")[:MAX_FINDINGS]


def is_builtin(template: Template) -> bool:
    """forgeflow's own templates keep strict rules: their output is ours to get right. A
    user template shadowing a built-in's id lives elsewhere, and is not one."""
    return template.path.parent == BUILTIN_TEMPLATES_DIR


# JSON with comments and trailing commas, by file name: what VS Code, the Dev Containers
# spec and the TypeScript, ESLint, Babel, Deno and Turborepo tools read as JSONC.
# TEMPLATES.md lists the same names.
JSONC_NAMES = frozenset(
    {"devcontainer.json", ".devcontainer.json", ".eslintrc.json", ".babelrc.json", "deno.json", "turbo.json"}
)
JSONC_PATTERNS = ("tsconfig*.json", "jsconfig*.json")
JSONC_DIRS = frozenset({".vscode"})  # every .json directly in one


def rule_for(rel: str) -> str | None:
    """The rule that checks a file, by its name; None for files no rule reads."""
    # String slicing, not PurePosixPath: verify runs this for every file of every run.
    parent, _, name = rel.rpartition("/")
    name = name.lower()
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 else ""  # as PurePosixPath: ".yml" alone has no suffix
    if suffix == ".json":
        jsonc = (
            name in JSONC_NAMES
            or any(fnmatchcase(name, p) for p in JSONC_PATTERNS)
            or parent.rpartition("/")[2].lower() in JSONC_DIRS
        )
        return "jsonc" if jsonc else "json"
    return _BY_SUFFIX.get(suffix)


_BY_SUFFIX = {".py": "python", ".jsonc": "jsonc", ".json5": "json5", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}


class _AnyTagLoader(yaml.SafeLoader):
    """A safe loader that reads a tag it does not know (CloudFormation's ``!Ref``, GitLab CI's
    ``!reference``, Ansible's ``!vault``...) as the plain scalar, list or mapping it tags:
    such a file is valid YAML, and only the tool reading it gives the tag a meaning."""


def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)  # the third kind of node


# None: every tag that has no constructor of its own (SafeLoader's standard tags keep theirs).
_AnyTagLoader.add_multi_constructor(None, _untagged)

_RUNNING: Version = sys.version_info[:2]


def _text(data: bytes) -> str:
    # As Path.read_text(encoding="utf-8") reads a file: \r\n and \r become \n.
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def _python(data: bytes, rel: str, grammar: Version) -> None:
    if grammar >= _RUNNING:
        compile(data, rel, "exec", dont_inherit=True)
        return
    # An older grammar than the worker's: the parser refuses what that version lacks (a
    # walrus in a 3.7 project); compiling the tree finds what only the compiler sees.
    compile(ast.parse(data, rel, feature_version=grammar), rel, "exec", dont_inherit=True)


def _json5_text(data: bytes) -> str:
    return _text(data).removeprefix("\ufeff")  # editors on Windows may write a BOM


def _jsonc(data: bytes) -> None:
    # JSON5 is a superset of JSONC (comments, trailing commas). -1: no nesting limit of its
    # own (it is 32 by default), as json has none; Python's recursion limit still holds.
    pyjson5.decode(_json5_text(data), maxdepth=-1)


_PARSE: dict[str, Callable[[bytes], object]] = {
    "json": lambda data: json.loads(_text(data)),
    "jsonc": _jsonc,
    "json5": _jsonc,
    "yaml": lambda data: list(yaml.load_all(_text(data), Loader=_AnyTagLoader)),
    "toml": lambda data: tomllib.loads(_text(data)),
}
_FAILURES = (SyntaxError, ValueError, yaml.YAMLError, pyjson5.Json5Exception, RecursionError)

_NEAR = re.compile(r" near (\d+)")


def _describe(exc: BaseException, data: bytes) -> str:
    """One line, with the place where the parser gives one."""
    name = type(exc).__name__
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{name}: {exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    text = str(exc.args[0]) if isinstance(exc, pyjson5.Json5Exception) and exc.args else str(exc)
    if isinstance(exc, pyjson5.Json5Exception) and (near := _NEAR.search(text)):
        # pyjson5 names a character offset: a line and column say more.
        before = _json5_text(data)[: int(near[1])]
        place = f" (near line {before.count(chr(10)) + 1}, column {len(before) - before.rfind(chr(10))})"
        text = text[: near.start()] + text[near.end() :] + place
    lines = f"{name}: {text}".splitlines()
    return (lines[0] if lines else name)[:MAX_MESSAGE]


# Contents known to parse, by rule, grammar and sha256: generations from one template repeat
# most files byte for byte, and parsing them again (compiling every module) was the biggest
# part of verify. Only successes are kept; a failure is checked again and named with its path.
_PARSED: LRU[tuple[str, Version | None, bytes], bool] = LRU(50_000)


def _check_file(data: bytes, rel: str, result: Verification, pythons: DeclaredPythons, *, strict: bool) -> None:
    rule = rule_for(rel)
    if rule is None:
        return
    declared = pythons.for_file(rel) if rule == "python" else None
    grammar = (min(declared, _RUNNING) if declared else _RUNNING) if rule == "python" else None
    key = (rule, grammar, hashlib.sha256(data).digest())
    if _PARSED.get(key):
        result.files_checked += 1
        return
    try:
        if grammar is not None:
            _python(data, rel, grammar)
        else:
            _PARSE[rule](data)
    except _FAILURES as exc:
        message = _describe(exc, data)
        severity: Severity = "error" if strict else "warning"
        if declared is not None and declared > _RUNNING:
            # ast.parse can only go down from the worker's grammar: the file may be valid
            # Python of the version the project declares. It cannot be told here.
            wanted, running = ".".join(map(str, declared)), ".".join(map(str, _RUNNING))
            message = (
                f"not checked: the project declares Python {wanted}, newer than the worker's {running} ({message})"
            )
            message = message[:MAX_MESSAGE]
            severity = "warning"
        result.add(Finding(rel, rule, severity, message))
        return
    result.files_checked += 1
    _PARSED.put(key, True)


# Rules over the whole project (engine.rules): findings by rule name, for each rule that ran.
ProjectRules = Callable[[Tree], Mapping[str, Sequence[Finding]]]


def verify_files(
    files: Tree, expected_outputs: Sequence[str], *, strict: bool = True, project_rules: ProjectRules | None = None
) -> Verification:
    """``strict``: a file a rule cannot parse is an error (forgeflow's own templates, see
    :func:`is_builtin`), else a warning. ``project_rules``: what the template's projects are
    held to beyond each file parsing (``engine.rules.rules_for``)."""
    result = Verification()
    for expected in expected_outputs:
        if expected not in files:
            result.fail("expected output is missing", path=expected, rule="expected-output")
    pythons = DeclaredPythons(files)
    for rel in sorted(files):
        _check_file(files[rel].data, rel, result, pythons, strict=strict)
    for rule, findings in (project_rules(files) if project_rules else {}).items():
        result.rules.append(rule)
        for finding in findings:
            result.add(finding)
    return result
