"""Root URL configuration."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("core.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
{%- if cookiecutter.use_buttondown == 'y' %}
    path("newsletter/", include("newsletter.urls")),
{%- endif %}
{%- if cookiecutter.use_stripe == 'y' %}
    path("billing/", include("billing.urls")),
{%- endif %}
{%- if cookiecutter.generate_blog == 'y' %}
    path("blog/", include("blog.urls")),
{%- endif %}
{%- if cookiecutter.use_ai == 'y' %}
    path("assistant/", include("assistant.urls")),
{%- endif %}
{%- if cookiecutter.use_healthchecks == 'y' %}
    path("", include("health.urls")),
{%- endif %}
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
