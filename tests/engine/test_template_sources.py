"""Registered git sources: refs resolved to commits, commits checked out into the
content-addressed cache, and what is refused (hostile refs, unknown refs, unreachable
sources, links out of the template)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import EngineError, UnknownTemplate
from engine.gitsource import ls_remote
from engine.sources import (
    InvalidTemplateRef,
    SourceUnavailable,
    TemplateSources,
    UnknownTemplateRef,
    load_registry,
    parse_spec,
    public_url,
)
from engine.templates import load_template, resolve_template
from tests.template_repos import commit, git, new_repo


def cookiecutter_template(repo: Path, readme: str) -> None:
    (repo / "cookiecutter.json").write_text(json.dumps({"project_slug": "demo", "flavour": ["plain", "spicy"]}))
    project = repo / "{{ cookiecutter.project_slug }}"
    project.mkdir(exist_ok=True)
    (project / "README.md").write_text(readme)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path / "starter")
    cookiecutter_template(repo, "one\n")
    commit(repo, "first", tag="v1")
    cookiecutter_template(repo, "two\n")
    commit(repo, "second", tag="v2", annotated=True)
    return repo


@pytest.fixture
def sources(repo: Path, tmp_path: Path) -> TemplateSources:
    return TemplateSources(urls={"starter": str(repo)}, cache_dir=tmp_path / "cache")


def readme(template_path: Path) -> str:
    return (template_path / "{{ cookiecutter.project_slug }}" / "README.md").read_text()


def test_tags_branches_and_commits_resolve_and_check_out(repo: Path, sources: TemplateSources) -> None:
    v1, v2 = git(repo, "rev-parse", "v1"), git(repo, "rev-parse", "v2^{commit}")
    assert resolve_template("starter@v1", sources=sources) == f"starter@v1:{v1}"
    assert resolve_template("starter@v2", sources=sources) == f"starter@v2:{v2}"  # annotated: its commit
    assert resolve_template("starter", sources=sources) == f"starter@HEAD:{v2}"  # the default branch
    assert resolve_template("starter@main", sources=sources) == f"starter@main:{v2}"
    assert resolve_template(f"starter@{v1}", sources=sources) == f"starter@{v1}:{v1}"
    first = load_template(f"starter@v1:{v1}", sources=sources)
    assert readme(first.path) == "one\n" and first.path == sources.cache_dir / v1
    assert first.id == "starter" and first.origin is not None and first.origin.commit == v1
    assert not first.trusted and not (first.path / ".git").exists()
    # The same commit is the same checkout, whatever ref named it.
    assert load_template(f"starter@{v1}:{v1}", sources=sources).digest == first.digest
    assert load_template(f"starter@v1:{v1}", sources=sources, trusted_ids={"starter"}).trusted


def test_a_pinned_commit_survives_the_ref_moving(repo: Path, sources: TemplateSources) -> None:
    pinned = resolve_template("starter@main", sources=sources)
    cookiecutter_template(repo, "three\n")
    commit(repo, "third")
    assert readme(load_template(pinned, sources=sources).path) == "two\n"
    assert resolve_template("starter@main", sources=sources) != pinned


@pytest.mark.parametrize(
    "ref",
    [
        "--upload-pack=touch /tmp/pwned",
        "-x",
        "../../etc",
        "v1/../v2",
        "a" * 101,
        "vé",
        "v1^",
        "HEAD~1",
        "@{-1}",
        "v1 v2",
        "v1.lock",
        ".hidden",
        "",
        "$(id)",
        "v1\nv2",
    ],
)
def test_hostile_refs_are_refused_before_git_runs(ref: str, sources: TemplateSources, tmp_path: Path) -> None:
    with pytest.raises(InvalidTemplateRef):
        resolve_template(f"starter@{ref}", sources=sources)
    assert not (sources.cache_dir).exists()


def test_an_unknown_ref_or_commit_is_named(sources: TemplateSources) -> None:
    with pytest.raises(UnknownTemplateRef) as caught:
        resolve_template("starter@v9", sources=sources)
    assert caught.value.ref == "v9"
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(UnknownTemplateRef):
        load_template(resolve_template(f"starter@{missing}", sources=sources), sources=sources)


def test_an_unreachable_source_is_unavailable(tmp_path: Path) -> None:
    sources = TemplateSources(urls={"gone": str(tmp_path / "nowhere")}, cache_dir=tmp_path / "cache")
    with pytest.raises(SourceUnavailable):
        resolve_template("gone@v1", sources=sources)
    with pytest.raises(SourceUnavailable):
        load_template("gone@v1:" + "1" * 40, sources=sources)


def test_only_registered_ids_and_directories_are_known(sources: TemplateSources) -> None:
    with pytest.raises(UnknownTemplate) as caught:
        load_template("https://evil.example/x.git", sources=sources)
    assert "starter" in caught.value.available and "djass-saas" in caught.value.available
    with pytest.raises(UnknownTemplateRef):  # a directory has one version and no refs
        load_template("djass-saas@v1", sources=sources)
    with pytest.raises(EngineError):  # a source is only rendered pinned to a commit
        load_template("starter@v1", sources=sources)


def test_a_template_with_a_link_out_of_it_is_refused_and_not_cached(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "linked")
    cookiecutter_template(repo, "x\n")
    (repo / "{{ cookiecutter.project_slug }}" / "key").symlink_to("/etc/passwd")
    commit(repo, "link", tag="v1")
    sources = TemplateSources(urls={"linked": str(repo)}, cache_dir=tmp_path / "cache")
    with pytest.raises(EngineError, match="points outside the template"):
        load_template(resolve_template("linked@v1", sources=sources), sources=sources)
    assert [p.name for p in sources.cache_dir.iterdir()] == []


def test_the_registry(tmp_path: Path) -> None:
    file = tmp_path / "templates.yaml"
    file.write_text("sources:\n  starter: /srv/a.git\n  other: https://user:pw@git.example/o.git?x=1\n")
    assert load_registry({"starter": "/srv/b.git"}, file) == {
        "starter": "/srv/b.git",
        "other": "https://user:pw@git.example/o.git?x=1",
    }
    assert public_url("https://user:pw@git.example:8443/o.git?x=1#f") == "https://git.example:8443/o.git"
    with pytest.raises(EngineError):
        load_registry({"Bad Id": "/x"}, None)
    with pytest.raises(EngineError):
        load_registry({"ok": "--upload-pack=x"}, None)
    assert parse_spec("starter@v1:" + "a" * 40).commit == "a" * 40


def test_ls_remote_lists_tags_peeled_and_the_default_branch(repo: Path) -> None:
    refs = ls_remote(str(repo))
    assert refs.default_branch == "main" and set(refs.tags) == {"v1", "v2"}
    assert refs.tags["v2"] == git(repo, "rev-parse", "v2^{commit}")
