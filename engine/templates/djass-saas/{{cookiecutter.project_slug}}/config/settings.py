"""Django settings for {{ cookiecutter.project_name }}.

Every secret and deployment-specific value is read from the environment (or a
local ``.env`` file, see ``.env.example``). The defaults are safe for local
development only: production refuses to start with the development secret key.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, {% if cookiecutter.use_sentry == 'y' or cookiecutter.use_ai == 'y' %}env_float, {% endif %}env_int, env_list, env_str, load_dotenv
{%- if cookiecutter.use_logfire == 'y' %}
from config.logfire_setup import configure_logfire
{%- endif %}
{%- if cookiecutter.use_sentry == 'y' %}
from config.sentry_setup import init_sentry
{%- endif %}
{%- if cookiecutter.use_s3 == 'y' %}
from config.storage import build_storages
{%- endif %}

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

# --- Site identity -----------------------------------------------------------

SITE_NAME = {{ cookiecutter.project_name | tojson }}
SITE_DESCRIPTION = {{ cookiecutter.project_description | tojson }}
BRAND_COLOR = {{ cookiecutter.project_main_color | tojson }}

# --- Core --------------------------------------------------------------------

DEV_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
{%- if cookiecutter.use_s3 == 'y' %}
    "storages",
{%- endif %}
    "core",
    "accounts",
{%- if cookiecutter.use_posthog == 'y' %}
    "analytics",
{%- endif %}
{%- if cookiecutter.use_buttondown == 'y' %}
    "newsletter",
{%- endif %}
{%- if cookiecutter.use_stripe == 'y' %}
    "billing",
{%- endif %}
{%- if cookiecutter.generate_blog == 'y' %}
    "blog",
{%- endif %}
{%- if cookiecutter.use_mjml == 'y' %}
    "emails",
{%- endif %}
{%- if cookiecutter.use_ai == 'y' %}
    "assistant",
{%- endif %}
{%- if cookiecutter.use_healthchecks == 'y' %}
    "health",
{%- endif %}
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.site",
{%- if cookiecutter.use_posthog == 'y' %}
                "analytics.context_processors.posthog",
{%- endif %}
            ],
        },
    },
]

# --- Database: SQLite by default, any DATABASE_URL otherwise -------------------

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Authentication ----------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "accounts:profile"
LOGOUT_REDIRECT_URL = "core:landing"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation ----------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files --------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = BASE_DIR / "media"
# In development (and tests) WhiteNoise serves files straight from the apps'
# static directories; in production it serves the collected STATIC_ROOT.
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = DEBUG
{%- if cookiecutter.use_s3 == 'y' %}

# Uploaded files go to S3-compatible storage when AWS_STORAGE_BUCKET_NAME is
# set and to MEDIA_ROOT otherwise; static files are always served by WhiteNoise.
STORAGES = build_storages()
{%- else %}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
{%- endif %}

# --- Email -------------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_BACKEND = env_str(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
{%- if cookiecutter.author_email.count('@') == 1 and ' ' not in cookiecutter.author_email and '.' in cookiecutter.author_email.split('@')[1] %}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", {{ cookiecutter.author_email | tojson }})
{%- else %}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "webmaster@localhost")
{%- endif %}
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security (production) ---------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
{%- if cookiecutter.use_healthchecks == 'y' %}
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
{%- endif %}
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
{%- if cookiecutter.use_posthog == 'y' %}

# --- PostHog analytics (inert while POSTHOG_API_KEY is unset) -----------------

POSTHOG_API_KEY = env_str("POSTHOG_API_KEY")
POSTHOG_HOST = env_str("POSTHOG_HOST", "https://us.i.posthog.com").rstrip("/")
{%- endif %}
{%- if cookiecutter.use_buttondown == 'y' %}

# --- Buttondown newsletter (inert while BUTTONDOWN_API_KEY is unset) ----------

BUTTONDOWN_API_KEY = env_str("BUTTONDOWN_API_KEY")
BUTTONDOWN_API_URL = env_str("BUTTONDOWN_API_URL", "https://api.buttondown.com/v1").rstrip("/")
{%- endif %}
{%- if cookiecutter.use_stripe == 'y' %}

# --- Stripe billing (inert while STRIPE_SECRET_KEY is unset) ------------------

STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_PRICE_ID = env_str("STRIPE_PRICE_ID")
STRIPE_API_URL = env_str("STRIPE_API_URL", "https://api.stripe.com/v1").rstrip("/")
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300)
BILLING_PLAN_NAME = env_str("BILLING_PLAN_NAME", "Pro")
BILLING_PLAN_PRICE = env_str("BILLING_PLAN_PRICE", "$19 / month")
BILLING_PLAN_FEATURES = env_list(
    "BILLING_PLAN_FEATURES",
    ["Unlimited projects", "Priority support", "Cancel any time"],
)
{%- endif %}
{%- if cookiecutter.use_mjml == 'y' %}

# --- Email templates written in MJML ----------------------------------------
# Leave MJML_BINARY empty to use the built-in Python renderer; set it to e.g.
# "mjml" or "npx mjml" to compile with the official MJML tool (needs Node).

MJML_BINARY = env_str("MJML_BINARY")
{%- endif %}
{%- if cookiecutter.use_ai == 'y' %}

# --- AI assistant: any OpenAI-compatible chat-completions API -----------------

AI_API_KEY = env_str("AI_API_KEY")
AI_BASE_URL = env_str("AI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
AI_MODEL = env_str("AI_MODEL", "gpt-4o-mini")
AI_TIMEOUT = env_float("AI_TIMEOUT", 30.0)
{%- endif %}
{%- if cookiecutter.use_healthchecks == 'y' %}

# --- Health checks (healthchecks.io ping is optional) ------------------------

HEALTHCHECKS_PING_URL = env_str("HEALTHCHECKS_PING_URL").rstrip("/")
{%- endif %}
{%- if cookiecutter.use_sentry == 'y' %}

# --- Sentry error reporting (only when SENTRY_DSN is set) ---------------------

init_sentry(
    env_str("SENTRY_DSN"),
    environment=env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production"),
    traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
)
{%- endif %}
{%- if cookiecutter.use_logfire == 'y' %}

# --- Logfire observability (only when LOGFIRE_TOKEN is set) -------------------

configure_logfire(
    env_str("LOGFIRE_TOKEN"),
    service_name=env_str("LOGFIRE_SERVICE_NAME", {{ cookiecutter.project_slug | tojson }}),
    environment=env_str("LOGFIRE_ENVIRONMENT", "development" if DEBUG else "production"),
)
{%- endif %}
