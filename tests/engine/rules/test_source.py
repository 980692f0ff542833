"""facts_of: what the rules read from one Python file, read once per content."""

from __future__ import annotations

from engine.rules import source
from engine.rules.source import UrlPattern, facts_of

URLS = b"""from django.urls import include, path
from blog import views
from blog.feeds import LatestPostsFeed as Feed

app_name = "blog"

urlpatterns = [
    path("", views.PostListView.as_view(), name="post_list"),
    path("feed/", Feed(), name="feed"),
    path("shop/", include(("shop.urls", "shop"))),
    path("api/", include("api.urls", namespace="v1")),
    path("inline/", include([path("x", views.x)])),
]
if True:
    urlpatterns += [path("late/", views.late, name="late")]
"""


def test_url_patterns_and_their_bindings():
    facts = facts_of(URLS)
    assert facts is not None and facts.app_name == "blog"
    assert facts.patterns == (
        UrlPattern(8, "post_list", view=("views", "PostListView", "as_view")),
        UrlPattern(9, "feed", view=("Feed",)),
        UrlPattern(10, None, include="shop.urls", namespace="shop"),
        UrlPattern(11, None, include="api.urls", namespace="v1"),
        UrlPattern(12, None, opaque=True),
        UrlPattern(15, "late", view=("views", "late")),
    )
    assert facts.bindings["views"] == ("blog", 0, "views")
    assert facts.bindings["Feed"] == ("blog.feeds", 0, "LatestPostsFeed")
    assert facts_of(b"X = 1\n").patterns is None  # no URL conf


def test_settings_strings_and_reversed_names():
    settings = b"""
INSTALLED_APPS = ["core"] + ["blog"]
INSTALLED_APPS += ["extra"]
TEMPLATES = [{"BACKEND": "dj.Templates", "OPTIONS": {"context_processors": ["core.cp.site"]}}]
EMAIL_BACKEND = env("X", "a.Smtp" if HOST else "a.Console")
LOGIN_URL = reverse_lazy("login")

def view(request):
    return redirect("accounts:profile") or redirect("/next/") or reverse("v1.x")
"""
    facts = facts_of(settings)
    assert facts is not None
    assert facts.strings["INSTALLED_APPS"] == ("core", "blog", "extra")
    assert facts.strings["TEMPLATES"] == ("dj.Templates", "core.cp.site")  # values, not keys
    assert facts.strings["EMAIL_BACKEND"] == ("X", "a.Smtp", "a.Console")
    # A slash or a dot makes a URL, not a name (as resolve_url reads it).
    assert facts.url_names == (("login", 6), ("accounts:profile", 9))


def test_a_file_that_does_not_parse_has_no_facts():
    assert facts_of(b"def (:\n") is None


def test_facts_are_read_once_per_content(monkeypatch):
    reads = []
    real = source._read
    monkeypatch.setattr(source, "_read", lambda data: reads.append(data) or real(data))
    text = b"UNIQUE_TO_THIS_TEST = 1\n"
    assert facts_of(text) == facts_of(bytes(text)) and len(reads) == 1
