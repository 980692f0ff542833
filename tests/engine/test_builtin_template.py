"""Tests for forgeflow's built-in project template, ``engine/templates/djass-saas``.

The fast tests render the template with cookiecutter for several flag
combinations and check the output (syntax, flag-specific files, the forgeflow
manifest's module ownership). The slow tests install two generated projects in
fresh virtual environments, run their own test suites and serve them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import html
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from cookiecutter.environment import StrictEnvironment
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config

from forgeflow.ports import free_port

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "engine" / "templates" / "djass-saas"
MANIFEST = TEMPLATE_DIR / "forgeflow.yaml"

FLAGS = [
    "use_posthog",
    "use_buttondown",
    "use_s3",
    "use_stripe",
    "use_sentry",
    "generate_blog",
    "generate_docs",
    "use_mjml",
    "use_ai",
    "use_logfire",
    "use_healthchecks",
    "use_ci",
]

EXPECTED_VARIABLES = {
    "project_name": "My SaaS",
    "project_slug": "{{ cookiecutter.project_name.lower().replace(' ', '_').replace('-', '_') }}",
    "project_description": "A SaaS application built with Django.",
    "repo_url": "",
    "author_name": "Forgeflow",
    "author_email": "hello@example.com",
    "author_url": "",
    "project_main_color": "blue",
    **{flag: "n" for flag in FLAGS},
    "use_healthchecks": "y",
    "use_ci": "y",
}

COLOURS = ["blue", "green", "red", "purple", "orange", "teal", "slate"]
BRAND_HEX = {
    "blue": "#2563eb",
    "green": "#16a34a",
    "red": "#dc2626",
    "purple": "#9333ea",
    "orange": "#ea580c",
    "teal": "#0d9488",
    "slate": "#475569",
}

# One file that exists exactly when the flag is on.
FLAG_SENTINELS = {
    "use_posthog": "analytics/posthog.py",
    "use_buttondown": "newsletter/buttondown.py",
    "use_s3": "config/storage.py",
    "use_stripe": "billing/webhooks.py",
    "use_sentry": "config/sentry_setup.py",
    "generate_blog": "blog/models.py",
    "generate_docs": "mkdocs.yml",
    "use_mjml": "emails/mjml.py",
    "use_ai": "assistant/client.py",
    "use_logfire": "config/logfire_setup.py",
    "use_healthchecks": "health/views.py",
    "use_ci": ".github/workflows/ci.yml",
}

# Django app added to INSTALLED_APPS exactly when the flag is on.
FLAG_APPS = {
    "use_posthog": "analytics",
    "use_buttondown": "newsletter",
    "use_stripe": "billing",
    "generate_blog": "blog",
    "use_mjml": "emails",
    "use_ai": "assistant",
    "use_healthchecks": "health",
    "use_s3": "storages",
}

# Dependency (as it starts in pyproject.toml) present exactly when the flag is on.
FLAG_DEPENDENCIES = {
    "use_s3": "django-storages",
    "use_sentry": "sentry-sdk",
    "use_logfire": "logfire",
}
HTTPX_FLAGS = ("use_posthog", "use_buttondown", "use_stripe", "use_ai")

# Rendered files that legitimately contain Django template syntax.
DJANGO_TEMPLATE_SUFFIXES = (".html", ".mjml", ".txt")


def flags(value: str, **overrides: str) -> dict[str, str]:
    return {**{flag: value for flag in FLAGS}, **overrides}


COMBINATIONS: dict[str, dict[str, str]] = {
    "all-y": flags("y"),
    "all-n": flags("n"),
    "defaults": {},
    "mixed-commerce": flags(
        "n",
        use_stripe="y",
        generate_blog="y",
        use_mjml="y",
        use_posthog="y",
        use_ci="y",
        project_name="Acme Cloud",
        project_main_color="teal",
        repo_url="https://github.com/acme/acme-cloud",
        author_name='Acme "Cloud" Ltd',
        author_email="dev@acme.example",
        author_url="https://acme.example",
    ),
    "mixed-platform": flags(
        "y",
        use_stripe="n",
        generate_blog="n",
        use_mjml="n",
        use_posthog="n",
        use_healthchecks="n",
        project_name="Data-Pipe Pro",
        project_description="Pipelines that don't leak: <fast> & 'safe'.",
        project_main_color="slate",
    ),
    "tricky-names": flags(
        "n",
        use_stripe="y",
        generate_docs="y",
        project_name='Tom & Jerry\'s "Cloud"',
        project_description="Backslashes \\ and {braces} and <tags> survive.",
        author_name="Zoë O'Brien",
        author_email="",
        project_main_color="purple",
    ),
    # Each flag alone, and everything but each flag, to catch cross-flag coupling.
    **{f"only-{flag}": flags("n", **{flag: "y"}) for flag in FLAGS},
    **{f"without-{flag}": flags("y", **{flag: "n"}) for flag in FLAGS},
}


# --- helpers -----------------------------------------------------------------

Rendered = tuple[dict[str, str], Path, dict[str, bytes]]  # (context, project dir, files)


def full_context(extra: dict[str, str]) -> dict[str, str]:
    """The cookiecutter context exactly as cookiecutter computes it with no_input."""
    context = generate_context(context_file=str(TEMPLATE_DIR / "cookiecutter.json"), extra_context=extra)
    return dict(prompt_for_config(context, no_input=True))


def render(extra: dict[str, str], output_dir: Path) -> Path:
    """Render the template with cookiecutter's own entry point."""
    output_dir.mkdir(parents=True, exist_ok=True)
    config = output_dir / "cookiecutter-config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cookiecutters_dir": str(output_dir / "cookiecutters"),
                "replay_dir": str(output_dir / "replay"),
            }
        ),
        encoding="utf-8",
    )
    project = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context=extra,
        output_dir=str(output_dir / "out"),
        config_file=str(config),
    )
    return Path(project)


def rendered_files(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes() for path in sorted(project.rglob("*")) if path.is_file()
    }


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A strict glob: ``**`` crosses directories, ``*`` and ``?`` do not."""
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def owner(path: str, modules: list[dict], *, strict: bool = True) -> dict | None:
    for module in modules:
        for pattern in module["paths"]:
            matched = glob_regex(pattern).match(path) if strict else fnmatch.fnmatchcase(path, pattern)
            if matched:
                return module
    return None


def is_active(module: dict, context: dict[str, str]) -> bool:
    when = module.get("when")
    if when is None:
        return True
    env = StrictEnvironment(context={"cookiecutter": context}, keep_trailing_newline=True)
    value = env.from_string(when).render(cookiecutter=context).strip().lower()
    return value not in {"", "false", "0", "no", "n", "none"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    results = {}
    for name, extra in COMBINATIONS.items():
        project = render(extra, tmp_path_factory.mktemp(name))
        results[name] = (full_context(extra), project, rendered_files(project))
    return results


combination = pytest.mark.parametrize("name", list(COMBINATIONS))


# --- the template itself -------------------------------------------------------


def test_cookiecutter_json_has_exactly_the_documented_variables() -> None:
    variables = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
    public = {key: value for key, value in variables.items() if not key.startswith("_")}
    assert list(public) == list(EXPECTED_VARIABLES)
    assert public == EXPECTED_VARIABLES


def test_template_uses_no_hooks() -> None:
    assert not (TEMPLATE_DIR / "hooks").exists()
    assert [p.name for p in TEMPLATE_DIR.iterdir() if p.is_dir()] == ["{{cookiecutter.project_slug}}"]


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    first = rendered_files(render(flags("y"), tmp_path / "first"))
    second = rendered_files(render(flags("y"), tmp_path / "second"))
    assert first == second


# --- rendered output -------------------------------------------------------------


@combination
def test_python_files_compile(renders, name: str) -> None:
    _, _, files = renders[name]
    python_files = [path for path in files if path.endswith(".py")]
    assert "manage.py" in python_files
    for path in python_files:
        compile(files[path].decode("utf-8"), path, "exec")


@combination
def test_structured_files_parse(renders, name: str) -> None:
    _, _, files = renders[name]
    parsed = 0
    for path, content in files.items():
        text = content.decode("utf-8")
        if path.endswith(".json"):
            json.loads(text)
        elif path.endswith((".yml", ".yaml")):
            yaml.safe_load(text)
        elif path.endswith(".toml"):
            tomllib.loads(text)
        else:
            continue
        parsed += 1
    assert parsed >= 1


@combination
def test_no_template_leftovers(renders, name: str) -> None:
    _, _, files = renders[name]
    for path, content in files.items():
        text = content.decode("utf-8")
        assert "cookiecutter" not in text, f"{path} mentions cookiecutter"
        if path.endswith(DJANGO_TEMPLATE_SUFFIXES) and "/templates/" in f"/{path}":
            continue  # Django templates use {{ }} and {% %} themselves
        for marker in ("{{", "{%", "{#"):
            assert marker not in text, f"{path} contains {marker!r}"


@combination
def test_text_files_are_tidy(renders, name: str) -> None:
    _, _, files = renders[name]
    for path, content in files.items():
        text = content.decode("utf-8")
        if not text:
            continue  # empty __init__.py files
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{path} must end with one newline"
        assert not text.startswith("\n"), f"{path} starts with a blank line"
        assert "\n\n\n\n" not in text, f"{path} has more than two consecutive blank lines"
        assert all(line == line.rstrip() for line in text.split("\n")), f"{path} has trailing whitespace"


@combination
def test_flag_specific_files(renders, name: str) -> None:
    context, project, files = renders[name]
    assert project.name == context["project_slug"]
    for flag, sentinel in FLAG_SENTINELS.items():
        assert (sentinel in files) == (context[flag] == "y"), f"{sentinel} vs {flag}={context[flag]}"


@combination
def test_settings_and_dependencies_follow_flags(renders, name: str) -> None:
    context, _, files = renders[name]
    settings = files["config/settings.py"].decode("utf-8")
    installed_apps = re.search(r"INSTALLED_APPS = \[(.*?)\]", settings, re.S).group(1)
    for flag, app in FLAG_APPS.items():
        assert (f'"{app}"' in installed_apps) == (context[flag] == "y"), app

    pyproject = tomllib.loads(files["pyproject.toml"].decode("utf-8"))
    dependencies = pyproject["project"]["dependencies"]
    assert any(dep.startswith("Django") for dep in dependencies)
    for flag, package in FLAG_DEPENDENCIES.items():
        assert any(dep.startswith(package) for dep in dependencies) == (context[flag] == "y"), package
    needs_httpx = any(context[flag] == "y" for flag in HTTPX_FLAGS)
    assert any(dep.startswith("httpx") for dep in dependencies) == needs_httpx
    name = pyproject["project"]["name"]
    assert name == re.sub(r"[^a-z0-9]", "-", context["project_slug"].lower()).strip("-")
    assert re.fullmatch(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?", name), name  # PEP 508 name
    assert pyproject["project"]["authors"][0]["name"] == context["author_name"]


@combination
def test_brand_colour_and_identity(renders, name: str) -> None:
    context, _, files = renders[name]
    base = files["templates/base.html"].decode("utf-8")
    assert f"--brand: {BRAND_HEX[context['project_main_color']]};" in base
    readme = files["README.md"].decode("utf-8")
    assert readme.startswith(f"# {context['project_name']}\n")
    assert "python manage.py migrate && python manage.py runserver" in readme
    if context["repo_url"]:
        assert context["repo_url"] in readme
    assert context["author_name"] in files["LICENSE"].decode("utf-8")


@combination
def test_every_file_is_owned_by_an_active_module(renders, manifest, name: str) -> None:
    context, _, files = renders[name]
    modules = manifest["modules"]
    for path in files:
        module = owner(path, modules)
        assert module is not None, f"{path} is owned by no module"
        assert is_active(module, context), f"{path} belongs to inactive module {module['slug']}"
        # forgeflow may use fnmatch, where * also crosses "/": ownership must not change.
        assert owner(path, modules, strict=False) is module, path


@combination
def test_active_modules_produce_their_expected_outputs(renders, manifest, name: str) -> None:
    context, _, files = renders[name]
    for module in manifest["modules"]:
        if not is_active(module, context):
            continue
        for expected in module["expected_outputs"]:
            assert expected in files, f"{module['slug']}: {expected} missing"
            owning = owner(expected, manifest["modules"])
            assert owning is module, f"{expected} is not owned by {module['slug']}"


# --- the manifest ------------------------------------------------------------------


def test_manifest_header(manifest) -> None:
    assert manifest["forgeflow"] == 1
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert manifest["title"] and manifest["description"]
    # verify compiles and parses every file in-process; a check would only repeat that.
    assert manifest["checks"] == []


def test_manifest_questions_cover_every_public_variable(manifest) -> None:
    questions = manifest["questions"]
    assert set(questions) == set(EXPECTED_VARIABLES)
    for key, question in questions.items():
        assert question["type"] in {"boolean", "single_choice", "text"}, key
        assert question["prompt"] and question["help"], key
        if "pattern" in question:
            re.compile(question["pattern"])
    for flag in FLAGS:
        assert questions[flag]["type"] == "boolean"
    assert questions["project_main_color"]["type"] == "single_choice"
    assert questions["project_main_color"]["options"] == COLOURS


def test_manifest_question_patterns_accept_the_defaults(manifest) -> None:
    context = full_context({})
    for key, question in manifest["questions"].items():
        if "pattern" in question:
            assert re.search(question["pattern"], context[key]), key


def test_manifest_modules_form_a_dag(manifest) -> None:
    modules = manifest["modules"]
    slugs = [module["slug"] for module in modules]
    assert len(slugs) == len(set(slugs))
    assert modules[-1]["slug"] == "core" and modules[-1]["paths"] == ["**"]
    for module in modules:
        assert module["description"] and module["paths"] and module["expected_outputs"], module["slug"]
        assert set(module["depends_on"]) <= set(slugs) - {module["slug"]}
        # Dependencies must always be active, whatever the flags.
        for dependency in module["depends_on"]:
            assert "when" not in modules[slugs.index(dependency)], (module["slug"], dependency)
        spec = module.get("spec", {})
        assert spec.get("acceptance"), module["slug"]
        for route in spec.get("routes", []):
            assert route["method"] in {"GET", "POST", "PUT", "PATCH", "DELETE"}
            assert route["path"].startswith("/")


def test_every_flag_has_its_own_module(manifest) -> None:
    flag_modules = {}
    for module in manifest["modules"]:
        match = re.fullmatch(r"\{\{ cookiecutter\.(\w+) == 'y' \}\}", module.get("when", ""))
        if match:
            flag_modules[match.group(1)] = module["slug"]
    assert set(flag_modules) == set(FLAGS)
    active = [m for m in manifest["modules"] if is_active(m, full_context(flags("y")))]
    assert 8 <= len(active) <= 14


# --- slow: install, test and serve generated projects ----------------------------------

INTEGRATION_ENV_PREFIXES = (
    "DJANGO_",
    "DATABASE_URL",
    "EMAIL_",
    "POSTHOG_",
    "BUTTONDOWN_",
    "AWS_",
    "STRIPE_",
    "BILLING_",
    "SENTRY_",
    "MJML_",
    "AI_",
    "LOGFIRE_",
    "HEALTHCHECKS_",
    "VIRTUAL_ENV",
    "PYTHONPATH",
)


def clean_env(venv: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(INTEGRATION_ENV_PREFIXES)}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def readme_start_command(readme: str) -> str:
    """The start command from the README's quick start block."""
    quick_start = readme.split("## Quick start", 1)[1]
    for line in quick_start.splitlines():
        if "manage.py runserver" in line:
            return line.split("#", 1)[0].strip()
    raise AssertionError("README has no runserver start command")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def wait_for(url: str, server: subprocess.Popen, deadline: float) -> tuple[int, str]:
    while True:
        if server.poll() is not None:
            raise AssertionError(f"server exited with {server.returncode}")
        try:
            return http_get(url)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "min_tests"), [("all-y", 80), ("all-n", 15)])
def test_generated_project_installs_passes_its_tests_and_serves(tmp_path: Path, name: str, min_tests: int) -> None:
    extra = COMBINATIONS[name]
    context = full_context(extra)
    project = render(extra, tmp_path)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ), timeout=300)
    env = clean_env(venv)
    python = str(venv / "bin" / "python")

    run([python, "-m", "pip", "install", "--quiet", "."], project, env, timeout=1200)

    tests = run([python, "manage.py", "test", "--noinput"], project, env, timeout=1200)
    output = tests.stdout + tests.stderr
    ran = re.search(r"^Ran (\d+) tests? in", output, re.M)
    assert ran and int(ran.group(1)) >= min_tests, output[-3000:]
    assert re.search(r"^OK\b", output, re.M), output[-3000:]
    print(f"{name}: the generated project ran {ran.group(1)} tests")

    port = free_port()
    start = readme_start_command((project / "README.md").read_text(encoding="utf-8"))
    command = f"{start} 127.0.0.1:{port} --noreload"
    log_path = tmp_path / "server.log"
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            ["bash", "-c", command],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status, body = wait_for(f"http://127.0.0.1:{port}/", server, time.monotonic() + 180)
            assert status == 200, body[:2000]
            assert html.escape(context["project_name"]) in body
            assert f"--brand: {BRAND_HEX[context['project_main_color']]};" in body
            status, _ = http_get(f"http://127.0.0.1:{port}/static/css/app.css")
            assert status == 200
            status, _ = http_get(f"http://127.0.0.1:{port}/accounts/signup/")
            assert status == 200
            if context["use_healthchecks"] == "y":
                status, body = http_get(f"http://127.0.0.1:{port}/healthz")
                assert (status, json.loads(body)) == (200, {"status": "ok"})
                status, body = http_get(f"http://127.0.0.1:{port}/readyz")
                assert status == 200, body
        except BaseException:
            stop(server)
            print(log_path.read_text(encoding="utf-8")[-4000:])
            raise
        finally:
            stop(server)
    assert (project / "db.sqlite3").is_file()
