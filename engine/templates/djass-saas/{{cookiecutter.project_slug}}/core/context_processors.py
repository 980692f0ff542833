from django.conf import settings

FEATURES = {
    "analytics": {{ (cookiecutter.use_posthog == 'y') | string }},
    "newsletter": {{ (cookiecutter.use_buttondown == 'y') | string }},
    "s3_storage": {{ (cookiecutter.use_s3 == 'y') | string }},
    "billing": {{ (cookiecutter.use_stripe == 'y') | string }},
    "error_tracking": {{ (cookiecutter.use_sentry == 'y') | string }},
    "blog": {{ (cookiecutter.generate_blog == 'y') | string }},
    "mjml_emails": {{ (cookiecutter.use_mjml == 'y') | string }},
    "assistant": {{ (cookiecutter.use_ai == 'y') | string }},
    "observability": {{ (cookiecutter.use_logfire == 'y') | string }},
    "health_checks": {{ (cookiecutter.use_healthchecks == 'y') | string }},
}


def site(request):
    """Expose the site identity and the enabled features to every template."""
    return {
        "site_name": settings.SITE_NAME,
        "site_description": settings.SITE_DESCRIPTION,
        "brand_color": settings.BRAND_COLOR,
        "features": FEATURES,
    }
