{%- set palette = {"blue": "#2563eb", "green": "#16a34a", "red": "#dc2626", "purple": "#9333ea", "orange": "#ea580c", "teal": "#0d9488", "slate": "#475569"} -%}
from django.conf import settings
from django.test import TestCase
from django.urls import reverse
from django.utils.html import escape


class LandingPageTests(TestCase):
    def test_landing_page_renders(self):
        response = self.client.get(reverse("core:landing"))
        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "core/landing.html")
        self.assertContains(response, escape(settings.SITE_NAME))
        self.assertContains(response, reverse("accounts:signup"))

    def test_landing_page_uses_brand_colour(self):
        response = self.client.get("/")
        self.assertContains(response, {{ ("--brand: " ~ palette.get(cookiecutter.project_main_color, cookiecutter.project_main_color) ~ ";") | tojson }})
        self.assertContains(response, "css/app.css")

    def test_authenticated_user_sees_account_link(self):
        user = self._create_user()
        self.client.force_login(user)
        response = self.client.get("/")
        self.assertContains(response, reverse("accounts:profile"))
        self.assertContains(response, "Log out")

    def test_unknown_page_returns_404(self):
        with self.assertLogs("django.request", level="WARNING"):
            response = self.client.get("/this-page-does-not-exist/")
        self.assertEqual(response.status_code, 404)

    def test_features_are_exposed_to_templates(self):
        response = self.client.get("/")
        features = response.context["features"]
        self.assertIs(features["billing"], {{ (cookiecutter.use_stripe == 'y') | string }})
        self.assertIs(features["blog"], {{ (cookiecutter.generate_blog == 'y') | string }})
{%- if cookiecutter.use_stripe == 'y' %}

    def test_landing_page_links_to_pricing(self):
        response = self.client.get("/")
        self.assertContains(response, reverse("billing:pricing"))
{%- endif %}
{%- if cookiecutter.generate_blog == 'y' %}

    def test_landing_page_lists_latest_published_posts(self):
        from blog.models import Post

        Post.objects.create(title="Hello world", slug="hello-world", body="Hi", status=Post.Status.PUBLISHED)
        Post.objects.create(title="Secret draft", slug="secret-draft", body="Hi")
        response = self.client.get("/")
        self.assertContains(response, "Hello world")
        self.assertNotContains(response, "Secret draft")
{%- endif %}
{%- if cookiecutter.use_buttondown == 'y' %}

    def test_landing_page_has_newsletter_form(self):
        response = self.client.get("/")
        self.assertContains(response, reverse("newsletter:subscribe"))
{%- endif %}

    @staticmethod
    def _create_user():
        from django.contrib.auth import get_user_model

        return get_user_model().objects.create_user("ada", "ada@example.com", "a-strong-password-123")
