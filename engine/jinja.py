"""The one place that decides how a template's Jinja runs.

A trusted template (a built-in, or one an operator lists in ``FORGEFLOW_TRUSTED_TEMPLATES``)
gets cookiecutter's own environment: its default extensions, the template's local
``_extensions`` and every ``_jinja2_env_vars`` setting, exactly as the cookiecutter tool
builds it. Any other template renders in Jinja's ``SandboxedEnvironment`` (as Copier does):
no private attributes, no globals, no Python internals reachable from an expression, only
cookiecutter's default extensions, and only the ``_jinja2_env_vars`` that change syntax or
whitespace. A template that asks for more is refused when it loads (:func:`check_untrusted`).

Only a template author's text is ever compiled here; a client's values reach templates as
data (``engine.context``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookiecutter.environment import ExtensionLoaderMixin
from cookiecutter.utils import create_env_with_context
from jinja2 import Environment, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from engine import EngineError

# Jinja's own extensions that add syntax, not reach: ``do`` and loop controls.
SAFE_EXTENSIONS = frozenset({"jinja2.ext.do", "jinja2.ext.loopcontrols"})
# The extensions cookiecutter loads for every template (and the old jinja2_time one it
# replaced): asking for them again changes nothing.
DEFAULT_EXTENSIONS = frozenset(
    {
        "cookiecutter.extensions.JsonifyExtension",
        "cookiecutter.extensions.RandomStringExtension",
        "cookiecutter.extensions.SlugifyExtension",
        "cookiecutter.extensions.TimeExtension",
        "cookiecutter.extensions.UUIDExtension",
        "jinja2_time.TimeExtension",
    }
)
# Settings of the environment that only change delimiters and whitespace. Anything else
# (``finalize``, ``extensions``, ``loader``, ``undefined``, caches) could hand the
# template a callable or a module.
SAFE_ENV_VARS = frozenset(
    {
        "block_start_string",
        "block_end_string",
        "variable_start_string",
        "variable_end_string",
        "comment_start_string",
        "comment_end_string",
        "line_statement_prefix",
        "line_comment_prefix",
        "trim_blocks",
        "lstrip_blocks",
        "newline_sequence",
        "keep_trailing_newline",
        "autoescape",
        "optimized",
    }
)

# Local ``_extensions`` are imported from the template's directory, as the cookiecutter
# tool does, through sys.path, which is process-wide: trusted environments are built one
# at a time. Rendering itself needs no lock.
_IMPORT_LOCK = threading.Lock()


class SandboxedCookiecutterEnvironment(ExtensionLoaderMixin, SandboxedEnvironment):
    """cookiecutter's StrictEnvironment on Jinja's sandbox, with its default extensions only."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(undefined=StrictUndefined, **kwargs)


def check_untrusted(template_name: str, variables: Mapping[str, Any]) -> None:
    """Refuse, when the template loads, what an untrusted template may not have: local or
    third-party Jinja extensions (they are Python code) and environment settings that are
    not plain syntax or whitespace."""
    extensions = variables.get("_extensions") or []
    if not isinstance(extensions, list):
        raise EngineError(f"{template_name}: _extensions must be a list")
    code = sorted(str(e) for e in extensions if str(e) not in DEFAULT_EXTENSIONS | SAFE_EXTENSIONS)
    if code:
        raise EngineError(
            f"{template_name}: the Jinja extensions {', '.join(code)} run Python code; an untrusted "
            "template may not load them (an operator can trust it with FORGEFLOW_TRUSTED_TEMPLATES)"
        )
    env_vars = variables.get("_jinja2_env_vars") or {}
    if not isinstance(env_vars, dict):
        raise EngineError(f"{template_name}: _jinja2_env_vars must be an object")
    unsafe = sorted(
        name
        for name, value in env_vars.items()
        if name not in SAFE_ENV_VARS or not isinstance(value, str | bool | type(None))
    )
    if unsafe:
        raise EngineError(
            f"{template_name}: _jinja2_env_vars {', '.join(unsafe)} are not allowed in an untrusted template "
            f"(allowed: {', '.join(sorted(SAFE_ENV_VARS))}, with string or boolean values)"
        )


def environment(context: Mapping[str, Any], *, trusted: bool, template_path: Path | None = None) -> Environment:
    """The Jinja environment a template's text renders in, for this context."""
    settings = context.get("cookiecutter", {})
    if not trusted:
        env_vars = {k: v for k, v in (settings.get("_jinja2_env_vars") or {}).items() if k in SAFE_ENV_VARS}
        extensions = [e for e in settings.get("_extensions") or [] if e in SAFE_EXTENSIONS]
        options = {"keep_trailing_newline": True, **env_vars}
        return SandboxedCookiecutterEnvironment(context={"cookiecutter": {"_extensions": extensions}}, **options)
    if template_path is None:
        return create_env_with_context(dict(context))
    with _IMPORT_LOCK:
        saved = list(sys.path)
        sys.path.insert(0, str(template_path))
        try:
            return create_env_with_context(dict(context))
        finally:
            sys.path[:] = saved
