"""Loading a Copier template (a ``copier.yml`` or ``copier.yaml`` at its root): its
questions as forgeflow's variables, and the rules an untrusted one is held to.

Copier itself refuses ``_jinja_extensions`` and ``_tasks`` of a template it is not told to
trust; forgeflow tells it only for trusted templates (built-ins, ``FORGEFLOW_TRUSTED_TEMPLATES``)
and refuses an untrusted one with extensions when it loads, as it does a cookiecutter
template's, naming them. An untrusted template's ``_tasks`` never run (on record); a
trusted one's run in the sandbox (engine.copier_render)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import EngineError, copier_bridge
from engine.jinja import SAFE_ENV_VARS

COPIER_FILES = ("copier.yml", "copier.yaml")
# Copier's own envops beyond the syntax ones: which Undefined class it uses (it accepts
# only jinja2's two).
SAFE_ENVOPS = SAFE_ENV_VARS | {"undefined"}


@dataclass(frozen=True)
class CopierDescription:
    variables: OrderedDict[str, Any]  # question -> its raw default (None where it has none)
    secret: frozenset[str]  # answers Copier keeps out of its answers file; forgeflow too
    has_tasks: bool


def is_copier(path: Path) -> bool:
    return any((path / name).is_file() for name in COPIER_FILES)


def _check_untrusted(name: str, extensions: list[Any], envops: Mapping[str, Any]) -> None:
    if extensions:
        raise EngineError(
            f"{name}: the Jinja extensions {', '.join(map(str, extensions))} run Python code; an untrusted "
            "template may not load them (an operator can trust it with FORGEFLOW_TRUSTED_TEMPLATES)"
        )
    unsafe = sorted(str(k) for k in envops if k not in SAFE_ENVOPS)
    if unsafe:
        raise EngineError(f"{name}: _envops {', '.join(unsafe)} are not allowed in an untrusted template")


def describe(path: Path, *, trusted: bool, name: str) -> CopierDescription:
    if (path / ".git").exists():
        # Copier would render the repository's latest tag, not these files.
        raise EngineError(
            f"{name}: a Copier template that is a git repository is registered as a source "
            "(FORGEFLOW_TEMPLATE_SOURCES), which pins its versions"
        )
    try:
        with copier_bridge.worker(path, path / ".unused", {}, trusted=trusted) as worker:
            template = worker.template
            questions: Mapping[str, Any] = template.questions_data
            extensions = list(template.jinja_extensions)
            envops = dict(template.envops)
            secret = frozenset(template.secret_questions)
            has_tasks = bool(template.tasks)
            # Before anything builds the Jinja environment, which imports the extensions.
            if not trusted:
                _check_untrusted(name, extensions, envops)
            for question, details in questions.items():
                # Each question as Copier reads it (an unknown key, a wrong type): refused now,
                # not when a create's answers are checked.
                copier_bridge.Question(
                    var_name=question,
                    answers=copier_bridge.AnswersMap(),
                    context={},
                    jinja_env=worker.jinja_env,
                    settings=worker.settings,
                    **details,
                )
    except (copier_bridge.CopierError, ValueError, TypeError, OSError) as exc:
        raise EngineError(f"{name}: its Copier configuration is invalid: {exc}") from exc
    variables: OrderedDict[str, Any] = OrderedDict()
    for question, details in questions.items():
        default = details.get("default") if isinstance(details, dict) else details
        variables[str(question)] = None if default is copier_bridge.MISSING else default
    return CopierDescription(variables=variables, secret=secret, has_tasks=has_tasks)
