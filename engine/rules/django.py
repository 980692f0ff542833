"""Two rules on a Django project (one with a ``manage.py`` naming its settings module), read
from the rendered files, not run. ``django-settings``: the settings module exists, imports
without a NameError, sets what Django needs, and each dotted path in it (apps, middleware,
context processors, backends, the WSGI application, the user model) names a module of the
project that defines it, or a library the project depends on. ``django-urls``: from
ROOT_URLCONF, every include finds its URL conf and every view the module that defines it,
and every URL name the project reverses (``{% url %}``, ``reverse()``, ``redirect()``,
LOGIN_REDIRECT_URL...) is one those URL confs declare.

Why not import Django: it is no dependency of forgeflow; importing the settings would run
the project's code in the worker's process (every project has a ``config`` package,
``sys.modules`` is shared) and would need every integration's library (sentry-sdk,
django-storages, logfire...) installed on the worker. What breaks a project made from a
template is a condition that drops a file, a name or an app while something still refers to
it; that shows in the files, in a few milliseconds."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from engine.lru import LRU
from engine.rules.imports import provided
from engine.rules.modules import STDLIB, Modules
from engine.rules.source import Facts, Import, UrlPattern
from engine.tree import Tree
from engine.verify import Finding

SETTINGS_RULE, URLS_RULE = "django-settings", "django-urls"
_SETTINGS_MODULE = re.compile(r"""DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']""")
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_URL_TAG = re.compile(r"""\{%\s*url\s+(['"])([^'"\s]+)\1""")
REQUIRED = ("SECRET_KEY", "INSTALLED_APPS", "ROOT_URLCONF", "DATABASES")
# Settings whose string values are dotted paths Django imports.
DOTTED = (
    "INSTALLED_APPS",
    "MIDDLEWARE",
    "TEMPLATES",
    "ROOT_URLCONF",
    "WSGI_APPLICATION",
    "ASGI_APPLICATION",
    "AUTHENTICATION_BACKENDS",
    "STORAGES",
    "CACHES",
    "DEFAULT_AUTO_FIELD",
    "AUTH_PASSWORD_VALIDATORS",
    "EMAIL_BACKEND",
    "SESSION_ENGINE",
    "MESSAGE_STORAGE",
    "TEST_RUNNER",
)
URL_NAME_SETTINGS = ("LOGIN_URL", "LOGIN_REDIRECT_URL", "LOGOUT_REDIRECT_URL")
_AUTH_NAMES = frozenset(
    {"login", "logout", "password_change", "password_change_done", "password_reset", "password_reset_done"}
    | {"password_reset_confirm", "password_reset_complete"}
)
# URL confs of libraries: (namespace, names; None: names this rule cannot list).
KNOWN_URLCONFS: dict[str, tuple[str | None, frozenset[str] | None]] = {
    "django.contrib.auth.urls": (None, _AUTH_NAMES),
    "django.contrib.admin.site.urls": ("admin", None),
}
_TEMPLATE_REFS: LRU[bytes, tuple[tuple[str, int], ...]] = LRU(20_000)

Namespace = tuple[str, ...]


@dataclass
class _Urls:
    """What the URL confs declare: names by namespace, and where a library's unknown URL
    conf may add names (``open``) or namespaces (``open_below``)."""

    dependencies: list[str] | None  # the project's, to tell a library's URL conf from a missing one
    names: dict[Namespace, set[str]] = field(default_factory=lambda: {(): set()})
    open: set[Namespace] = field(default_factory=set)
    open_below: set[Namespace] = field(default_factory=set)
    seen: set[tuple[str, Namespace]] = field(default_factory=set)

    def problem(self, reference: str) -> str | None:
        *path, name = reference.split(":")
        namespace = tuple(path)
        if namespace in self.names:
            if name in self.names[namespace] or namespace in self.open:
                return None
            where = f"the namespace {':'.join(namespace)}" if namespace else "the root URL conf"
            return f"{where} has no URL named {name}"
        if any(namespace[:i] in self.open_below for i in range(len(namespace))):
            return None
        return f"no URL conf registers the namespace {':'.join(namespace)}"


def check_django(files: Tree, modules: Modules, dependencies: list[str] | None) -> dict[str, list[Finding]] | None:
    """Findings by rule; None when the project is no Django project."""
    manage = f"{modules.root}manage.py"
    found = _SETTINGS_MODULE.search(files[manage].data.decode("utf-8", "replace")) if manage in files else None
    if found is None:
        return None
    settings = found[1]
    out: dict[str, list[Finding]] = {SETTINGS_RULE: [], URLS_RULE: []}
    facts = modules.facts(settings)
    if settings not in modules.paths:
        message = f"DJANGO_SETTINGS_MODULE is {settings}, which is not in the project: manage.py cannot start"
        out[SETTINGS_RULE].append(Finding(manage, SETTINGS_RULE, "error", message))
    if facts is None:
        return out  # missing, or does not parse (the python rule says so)
    rel = modules.paths[settings]
    out[SETTINGS_RULE] = [Finding(rel, SETTINGS_RULE, "error", m) for m in _settings(modules, facts, dependencies)]
    urls = _Urls(dependencies)
    root_urlconf = next(iter(facts.strings.get("ROOT_URLCONF", ())), None)
    if not (root_urlconf and modules.exists(root_urlconf)):
        return out  # no URL conf to resolve names in (the settings' findings say why)
    _walk(modules, root_urlconf, (), urls, out[URLS_RULE])
    references = [(rel, 0, name) for name in _names_in_settings(facts)]
    for module, path in modules:
        module_facts = modules.facts(module)
        references += [(path, line, name) for name, line in (module_facts.url_names if module_facts else ())]
    for path in sorted(p for p in files if p.startswith(modules.root) and _is_django_template(p)):
        references += [(path, line, name) for name, line in _template_refs(files[path].data)]
    for path, line, name in references:
        problem = urls.problem(name)
        if problem:
            place = f"line {line}: " if line else ""
            message = f"{place}the URL name {name!r} reverses to nothing (NoReverseMatch): {problem}"
            out[URLS_RULE].append(Finding(path, URLS_RULE, "error", message))
    return out


def _settings(modules: Modules, facts: Facts, dependencies: list[str] | None) -> list[str]:
    problems = [
        f"line {line}: {name} is read before anything defines or imports it: importing the settings fails"
        for name, line in facts.undefined
    ]
    if not facts.star:
        problems += [f"sets no {name}, which Django needs" for name in REQUIRED if name not in facts.defines]
    for key in DOTTED:
        for value in facts.strings.get(key, ()):
            problem = _dotted(modules, value, dependencies, app=key == "INSTALLED_APPS")
            if problem:
                problems.append(f"{key}: {problem}")
    for value in facts.strings.get("AUTH_USER_MODEL", ()):
        app, _, model = value.rpartition(".")
        if app and modules.is_local(app) and (problem := modules.find(f"{app}.models.{model}")):
            problems.append(f"AUTH_USER_MODEL {value}: {problem}")
    return problems


def _dotted(modules: Modules, value: str, dependencies: list[str] | None, *, app: bool) -> str | None:
    """What is wrong with a dotted path Django will import; None when nothing is, or when
    the value is no dotted path (a backend's alias, a URL, a plain word)."""
    if not _DOTTED.fullmatch(value) or ("." not in value and not app):
        return None
    top = value.partition(".")[0]
    if modules.is_local(top):
        problem = modules.find(value)
        return f"{value}: {problem}" if problem else None
    if not _unprovided(top, dependencies):
        return None
    return f"{value} is neither a module of the project nor from a dependency in pyproject.toml"


def _unprovided(top: str, dependencies: list[str] | None) -> bool:
    """Whether a module outside the project is from no library it has (None: unknown)."""
    return top not in STDLIB and dependencies is not None and not provided(top, dependencies)


def _walk(modules: Modules, module: str, namespace: Namespace, urls: _Urls, out: list[Finding]) -> None:
    if (module, namespace) in urls.seen:
        return
    urls.seen.add((module, namespace))
    facts, rel = modules.facts(module), modules.paths.get(module, "")
    urls.names.setdefault(namespace, set())
    if facts is None:
        if module in modules.paths:
            urls.open.add(namespace)  # does not parse: the python rule says so
        return
    for name, line in facts.undefined:
        message = f"line {line}: {name} is read before anything defines or imports it: importing the URL conf fails"
        out.append(Finding(rel, URLS_RULE, "error", message))
    if facts.patterns is None:
        out.append(Finding(rel, URLS_RULE, "error", "sets no urlpatterns: Django cannot use it as a URL conf"))
        return
    for pattern in facts.patterns:
        if pattern.name:
            urls.names[namespace].add(pattern.name)
        if pattern.opaque:
            urls.open.add(namespace)
            urls.open_below.add(namespace)
        elif pattern.include is not None:
            _include(modules, rel, pattern, pattern.include, namespace, urls, out)
        elif pattern.view:
            _view(modules, module, facts, rel, pattern, namespace, urls, out)


def _include(
    modules: Modules, rel: str, pattern: UrlPattern, target: str, namespace: Namespace, urls: _Urls, out: list[Finding]
) -> None:
    if not modules.is_local(target) and _unprovided(target.partition(".")[0], urls.dependencies):
        # Typically an app a template's condition left out, while its URLs stayed included.
        message = f"line {pattern.line}: include({target!r}) names a URL conf neither in the project nor a dependency"
        out.append(Finding(rel, URLS_RULE, "error", message))
    elif not modules.is_local(target):  # a library's: what it declares, where it is known
        known_namespace, names = KNOWN_URLCONFS.get(target, (None, None))
        inner = (*namespace, known_namespace) if known_namespace else namespace
        urls.names.setdefault(inner, set()).update(names or ())
        if names is None:
            urls.open.add(inner)
        if target not in KNOWN_URLCONFS:
            urls.open_below.add(namespace)
    elif not modules.exists(target):
        message = f"line {pattern.line}: include({target!r}) names a URL conf that is not in the project"
        out.append(Finding(rel, URLS_RULE, "error", message))
    else:
        inner_facts = modules.facts(target)
        name = pattern.namespace or (inner_facts.app_name if inner_facts else None)
        _walk(modules, target, (*namespace, name) if name else namespace, urls, out)


def _view(
    modules: Modules,
    module: str,
    facts: Facts,
    rel: str,
    pattern: UrlPattern,
    namespace: Namespace,
    urls: _Urls,
    out: list[Finding],
) -> None:
    view = pattern.view or ()
    binding = facts.bindings.get(view[0])
    if binding is None:
        return  # defined in the URL conf itself, or never defined (reported as unbound)
    source = modules.absolute(module, Import(binding[0], binding[1], (), pattern.line, False))
    if source is None:
        return
    dotted = ".".join([source, *([binding[2]] if binding[2] else []), *view[1:]])
    if dotted in KNOWN_URLCONFS:
        _include(modules, rel, pattern, dotted, namespace, urls, out)
    elif modules.is_local(dotted) and (problem := modules.find(dotted)):
        message = f"line {pattern.line}: the view {'.'.join(view)} is {dotted}, but {problem}"
        out.append(Finding(rel, URLS_RULE, "error", message))


def _names_in_settings(facts: Facts) -> list[str]:
    # As resolve_url reads these settings: a value with a slash or a dot is a URL.
    values = [v for key in URL_NAME_SETTINGS for v in facts.strings.get(key, ())]
    return [v for v in values if v and "/" not in v and "." not in v]


def _is_django_template(rel: str) -> bool:
    return "templates/" in rel and not rel.endswith(".py")


def _template_refs(data: bytes) -> tuple[tuple[str, int], ...]:
    def read() -> tuple[tuple[str, int], ...]:
        text = data.decode("utf-8", "replace")
        return tuple((m[2], text.count("\n", 0, m.start()) + 1) for m in _URL_TAG.finditer(text))

    return _TEMPLATE_REFS.get_or_make(hashlib.sha256(data).digest(), read)
