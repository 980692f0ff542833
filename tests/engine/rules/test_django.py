"""django-settings and django-urls: what a template condition can break in the built-in
template's Django project, found in the rendered files, naming the file and the rule."""

from __future__ import annotations

import pytest

from engine.rules import check_project
from engine.rules.django import check_django
from engine.rules.modules import Modules
from engine.tree import FileData
from tests.engine.rules.support import render, replaced
from tests.engine.test_builtin_template import COMBINATIONS

SETTINGS, URLS = "config/settings.py", "config/urls.py"

# (file, text, replacement) -> (the file named, rule, the start of the message)
BREAKAGES = {
    "unbound name": (
        (SETTINGS, "from config.env import env_bool, ", "from config.env import "),
        (SETTINGS, "django-settings", "line 28: env_bool is read before anything defines or imports it"),
    ),
    "missing setting": (
        (SETTINGS, 'ROOT_URLCONF = "config.urls"', 'ROOT_URL_CONF = "config.urls"'),
        (SETTINGS, "django-settings", "sets no ROOT_URLCONF, which Django needs"),
    ),
    "dropped app still installed": (
        (SETTINGS, '    "core",\n', '    "core",\n    "blog",\n'),
        (SETTINGS, "django-settings", "INSTALLED_APPS: blog is neither a module of the project nor from a dependency"),
    ),
    "context processor": (
        (SETTINGS, '"core.context_processors.site"', '"core.context_processors.sites"'),
        (
            SETTINGS,
            "django-settings",
            "TEMPLATES: core.context_processors.sites: core.context_processors defines no sites",
        ),
    ),
    "user model": (
        (SETTINGS, 'AUTH_USER_MODEL = "accounts.User"', 'AUTH_USER_MODEL = "accounts.Member"'),
        (SETTINGS, "django-settings", "AUTH_USER_MODEL accounts.Member: accounts.models defines no Member"),
    ),
    "wsgi application": (
        (SETTINGS, '"config.wsgi.application"', '"config.wsgi.app"'),
        (SETTINGS, "django-settings", "WSGI_APPLICATION: config.wsgi.app: config.wsgi defines no app"),
    ),
    "view": (
        ("core/urls.py", "views.landing", "views.home"),
        (
            "core/urls.py",
            "django-urls",
            "line 8: the view views.home is core.views.home, but core.views defines no home",
        ),
    ),
    "dropped app still included": (
        (
            URLS,
            'path("admin/", admin.site.urls),',
            'path("admin/", admin.site.urls),\n    path("blog/", include("blog.urls")),',
        ),
        (URLS, "django-urls", "line 13: include('blog.urls') names a URL conf neither in the project nor a dependency"),
    ),
    "dropped app still linked": (
        ("templates/base.html", "{% url 'core:landing' %}", "{% url 'billing:pricing' %}"),
        (
            "templates/base.html",
            "django-urls",
            "line 15: the URL name 'billing:pricing' reverses to nothing (NoReverseMatch): no URL conf registers the"
            " namespace billing",
        ),
    ),
    "renamed URL": (
        ("core/urls.py", 'name="landing"', 'name="home"'),
        (
            SETTINGS,
            "django-urls",
            "the URL name 'core:landing' reverses to nothing (NoReverseMatch): the namespace core has no URL named"
            " landing",
        ),
    ),
    "redirect setting": (
        (SETTINGS, 'LOGIN_REDIRECT_URL = "accounts:profile"', 'LOGIN_REDIRECT_URL = "accounts:home"'),
        (SETTINGS, "django-urls", "the URL name 'accounts:home' reverses to nothing"),
    ),
    "reverse in code": (
        ("accounts/views.py", 'redirect("accounts:profile")', 'redirect("profile")'),
        (
            "accounts/views.py",
            "django-urls",
            "line 13: the URL name 'profile' reverses to nothing (NoReverseMatch): the root URL conf has no URL"
            " named profile",
        ),
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_breakage_is_one_error_naming_the_file_and_the_rule(default_project, breakage):
    (path, old, new), (where, rule, message) = BREAKAGES[breakage]
    findings = [f for fs in check_project(replaced(default_project, path, old, new)).values() for f in fs]
    assert findings, "the breakage went unnoticed"
    first = findings[0]
    assert (first.path, first.rule, first.severity) == (where, rule, "error")
    assert first.message.startswith(message), first.message
    assert all(f.rule == rule for f in findings)


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_every_tested_flag_combination_passes(name):
    assert {r: f for r, f in check_project(render(COMBINATIONS[name])).items() if f} == {}


def test_both_rules_run_on_a_django_project_and_none_without_manage_py(default_project):
    assert set(check_project(default_project)) == {
        "pyproject",
        "python-imports",
        "dependencies",
        "django-settings",
        "django-urls",
    }
    without = {k: v for k, v in default_project.items() if k != "manage.py"}
    assert check_django(without, Modules(without), []) is None
    assert check_django(default_project, Modules(default_project), None) == {"django-settings": [], "django-urls": []}


def test_a_settings_module_manage_py_names_must_exist(default_project):
    broken = replaced(default_project, "manage.py", '"config.settings"', '"config.production"')
    found = check_django(broken, Modules(broken), None) or {}
    (finding,) = found["django-settings"]
    assert finding.path == "manage.py" and finding.message.startswith("DJANGO_SETTINGS_MODULE is config.production")


def test_urls_of_libraries_are_known_or_left_open(default_project):
    # An unknown library's URL conf may register any namespace: nothing can be said of them.
    opened = replaced(
        default_project,
        URLS,
        'path("admin/", admin.site.urls),',
        'path("admin/", admin.site.urls),\n    path("x/", include("django.contrib.flatpages.urls")),',
    )
    opened = replaced(opened, "templates/base.html", "{% url 'core:landing' %}", "{% url 'flat:page' %}")
    assert check_django(opened, Modules(opened), None) == {"django-settings": [], "django-urls": []}
    # The auth URLs are known by name: one it does not declare is an error.
    unknown = replaced(default_project, "templates/base.html", "{% url 'core:landing' %}", "{% url 'signin' %}")
    (finding,) = (check_django(unknown, Modules(unknown), None) or {})["django-urls"]
    assert "the root URL conf has no URL named signin" in finding.message


def test_a_url_conf_without_urlpatterns(default_project):
    broken = {**default_project, "core/urls.py": FileData(b"from django.urls import path\n\npatterns = []\n")}
    (finding, *_) = (check_django(broken, Modules(broken), None) or {})["django-urls"]
    assert (finding.path, finding.message) == (
        "core/urls.py",
        "sets no urlpatterns: Django cannot use it as a URL conf",
    )
