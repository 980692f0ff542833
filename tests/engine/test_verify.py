"""verify_files: each format checked as what it really is, findings with a severity (strict
for forgeflow's own templates, warnings for others), what parses remembered by content."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from engine.context import build_context
from engine.pyversion import lowest_python
from engine.render import render_files
from engine.templates import load_template
from engine.tree import FileData
from engine.verify import JSONC_NAMES, MAX_FINDINGS, is_builtin, rule_for, verify_files

FIXTURES = Path(__file__).parents[1] / "fixtures" / "templates"
NEEDS_OLDER_PYTHON = pytest.mark.skipif(sys.version_info >= (3, 12), reason="PEP 695 parses on this Python")

DEVCONTAINER = b"""// For format details, see https://aka.ms/devcontainer.json.
{
\t"name": "app",
\t// Or use a Dockerfile: https://containers.dev/guide/dockerfile
\t"image": "mcr.microsoft.com/devcontainers/python:1-3.12-bookworm",
\t/* "features": {}, */
\t"forwardPorts": [8000],
}
"""
TSCONFIG = b"""{
  "compilerOptions": {
    "target": "ES2022", // comments and trailing commas, as tsc reads them
    "lib": ["DOM", "ES2022",],
  },
}
"""
CLOUDFORMATION = b"""Resources:
  Uploads:
    Type: AWS::S3::Bucket
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Uploads
      Arn: !GetAtt [Uploads, Arn]
      Name: !Sub "${AWS::StackName}-uploads"
"""
GITLAB_CI = b""".setup:
  script: [pip install -e .]
test:
  script:
    - !reference [.setup, script]
    - pytest
"""
ANSIBLE = b"""password: !vault |
  $ANSIBLE_VAULT;1.1;AES256
  6231
"""
PEP_695 = b"type UserId = int\n\n\ndef first[T](items: list[T]) -> T:\n    return items[0]\n"


def pyproject(requires: str) -> FileData:
    return FileData(f'[project]\nname = "x"\nrequires-python = "{requires}"\n'.encode())


def test_verify_remembers_only_what_parsed() -> None:
    good = {"a.py": FileData(b"x = 1\n", 0o644), "b.json": FileData(b"{}", 0o644)}
    bad = {"c.py": FileData(b"def (:\n", 0o644)}
    for _ in range(2):  # the second time from memory: the same answer
        result = verify_files(good, ["a.py"])
        assert result.ok and result.files_checked == 2
        failed = verify_files(bad, [])
        assert not failed.ok and failed.errors[0].startswith("c.py: SyntaxError")
    renamed = verify_files({"d.py": FileData(b"def (:\n", 0o644)}, [])
    assert renamed.errors[0].startswith("d.py: SyntaxError"), "a failure is named with its own path"


@pytest.mark.parametrize(
    ("rel", "rule"),
    [
        (".devcontainer/devcontainer.json", "jsonc"),
        (".devcontainer/python/devcontainer.json", "jsonc"),
        (".devcontainer.json", "jsonc"),
        ("tsconfig.json", "jsonc"),
        ("web/tsconfig.build.json", "jsonc"),
        ("jsconfig.json", "jsonc"),
        (".vscode/launch.json", "jsonc"),
        ("packages/a/.vscode/settings.json", "jsonc"),
        ("notes.jsonc", "jsonc"),
        ("config.json5", "json5"),
        ("package.json", "json"),
        ("vscode/settings.json", "json"),
        (".vscode/sub/settings.json", "json"),
        ("app.py", "python"),
        ("ci.yml", "yaml"),
        ("README.md", None),
    ],
)
def test_rule_by_file_name(rel: str, rule: str | None) -> None:
    assert rule_for(rel) == rule


def test_templates_md_lists_every_jsonc_name() -> None:
    documented = (Path(__file__).parents[2] / "TEMPLATES.md").read_text()
    for name in [*JSONC_NAMES, "tsconfig*.json", "jsconfig*.json", ".vscode/*.json"]:
        assert f"`{name}`" in documented, name


def test_jsonc_files_parse_with_comments_and_trailing_commas() -> None:
    tree = {".devcontainer/devcontainer.json": FileData(DEVCONTAINER), "tsconfig.json": FileData(TSCONFIG)}
    result = verify_files(tree, [], strict=True)
    assert result.ok and result.files_checked == 2 and result.findings == []
    # Plain JSON stays plain: the same text in package.json is an error for a strict template.
    plain = verify_files({"package.json": FileData(TSCONFIG)}, [], strict=True)
    assert not plain.ok and plain.findings[0].rule == "json"
    broken = verify_files({"tsconfig.json": FileData(b'{\n  "a" 1\n}\n')}, [], strict=True)
    assert [(f.rule, f.severity) for f in broken.findings] == [("jsonc", "error")]
    assert "line 2" in broken.findings[0].message


def test_yaml_keeps_unknown_tags_as_data() -> None:
    tree = {"infra/stack.yaml": FileData(CLOUDFORMATION), ".gitlab-ci.yml": FileData(GITLAB_CI)}
    tree["vault.yml"] = FileData(ANSIBLE)
    result = verify_files(tree, [], strict=True)
    assert result.ok and result.files_checked == 3 and result.findings == []
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load(CLOUDFORMATION)  # the tolerant loader is a subclass: SafeLoader is untouched
    broken = verify_files({"ci.yml": FileData(b"a: [1\nb: 2\n")}, [], strict=True)
    assert not broken.ok and broken.findings[0].rule == "yaml" and "line 2" in broken.findings[0].message


def test_python_is_checked_with_the_declared_grammar() -> None:
    walrus = FileData(b"if (n := 1):\n    pass\n")
    old = verify_files({"pyproject.toml": pyproject(">=3.7"), "app.py": walrus}, [], strict=True)
    assert not old.ok and "only supported in Python 3.8" in old.errors[0]
    assert verify_files({"pyproject.toml": pyproject(">=3.8,<4"), "app.py": walrus}, [], strict=True).ok
    # Each file is checked for its nearest declaring pyproject.toml (a monorepo).
    tree = {"pyproject.toml": pyproject(">=3.10"), "old/pyproject.toml": pyproject("~=3.6"), "old/app.py": walrus}
    tree["new/app.py"] = walrus
    monorepo = verify_files(tree, [], strict=True)
    assert [f.path for f in monorepo.findings] == ["old/app.py"]
    # Remembered by grammar too: what parsed for 3.8 is checked again for 3.7.
    assert not verify_files({"pyproject.toml": pyproject(">=3.7"), "app.py": walrus}, [], strict=True).ok


@NEEDS_OLDER_PYTHON
def test_python_newer_than_the_worker_is_only_a_warning() -> None:
    declared = verify_files({"pyproject.toml": pyproject(">=3.12"), "types.py": FileData(PEP_695)}, [], strict=True)
    assert declared.ok and declared.warnings == 1
    finding = declared.findings[0]
    assert (finding.path, finding.rule, finding.severity) == ("types.py", "python", "warning")
    assert finding.message.startswith("not checked: the project declares Python 3.12")
    # Without a declared version the worker's grammar is all there is: strict fails.
    undeclared = verify_files({"types.py": FileData(PEP_695)}, [], strict=True)
    assert not undeclared.ok and undeclared.findings[0].severity == "error"


@pytest.mark.parametrize(
    ("specifier", "lowest"),
    [
        (">=3.10", (3, 10)),
        (">=3.9, <4", (3, 9)),
        ("~=3.11", (3, 11)),
        ("==3.12.*", (3, 12)),
        ("^3.10", (3, 10)),
        ("3.11", (3, 11)),
        (">=3.8 || >=3.10", (3, 8)),
        ("<4", None),
        ("*", None),
        (">=2.7, !=3.0.*", None),
        ("^2.7 || ^3.6", None),
    ],
)
def test_lowest_python(specifier: str, lowest: tuple[int, int] | None) -> None:
    assert lowest_python(specifier) == lowest


def test_a_third_party_template_gets_warnings_and_only_expected_outputs_fail() -> None:
    tree = {"values.json": FileData(b'{"replicas": {{ replicas }}}'), "gen.py": FileData(b"def {{ name }}():\n")}
    tree["c.toml"] = FileData(b"a = \n")
    lenient = verify_files(tree, ["values.json"], strict=False)
    assert lenient.ok and lenient.errors == []
    assert [(f.path, f.rule, f.severity) for f in lenient.findings] == [
        ("c.toml", "toml", "warning"),
        ("gen.py", "python", "warning"),
        ("values.json", "json", "warning"),
    ]
    missing = verify_files(tree, ["README.md"], strict=False)
    assert not missing.ok and missing.errors == ["README.md: expected output is missing"]
    assert verify_files(tree, [], strict=True).errors[0].startswith("c.toml: TOMLDecodeError")


def test_findings_are_bounded_errors_first() -> None:
    tree = {f"w{n:03}.json": FileData(b"{" + b"x" * 1000) for n in range(150)}
    result = verify_files(tree, ["missing.txt"], strict=False)
    listed = result.listed()
    assert len(result.findings) == 151 and result.warnings == 150 and len(listed) == MAX_FINDINGS
    assert listed[0].rule == "expected-output" and listed[0].severity == "error"
    assert all(f.severity == "warning" for f in listed[1:])


def test_the_builtin_template_keeps_strict_rules(tmp_path: Path) -> None:
    builtin = load_template("djass-saas")
    assert is_builtin(builtin)
    tree = render_files(builtin.path, build_context(builtin, {"project_name": "Acme"}), digest=builtin.digest)
    assert verify_files(tree, [], strict=is_builtin(builtin)).findings == []
    broken = dict(tree)
    broken["config/settings.json"] = FileData(b"{'single': 'quotes'}")
    broken["manage.py"] = FileData(tree["manage.py"].data + b"\ndef broken(:\n")
    failed = verify_files(broken, [], strict=is_builtin(builtin))
    assert not failed.ok and {f.path for f in failed.findings} == {"config/settings.json", "manage.py"}
    # A user template is no built-in, even one that shadows a built-in's id.
    shutil.copytree(FIXTURES / "widget-lib", tmp_path / "djass-saas")
    assert not is_builtin(load_template("djass-saas", template_path=str(tmp_path)))
    assert not is_builtin(load_template("polyglot-lib", template_path=str(FIXTURES)))
