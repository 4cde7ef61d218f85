"""Settings for the device lifecycle management portal.

All configuration comes from environment variables (see README.md, "Configuration").
Two modes:

* demo / development (default): SQLite and a file-system Celery broker under ``var/``, a generated
  secret key kept in ``var/secret_key``; nothing to install but Python.
* production (``MDM_PRODUCTION=1``): ``SECRET_KEY``, ``DATABASE_URL`` and ``ALLOWED_HOSTS`` are
  required, DEBUG is off, cookies are secure and HTTPS is enforced; ``manage.py check --deploy``
  reports nothing.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MDM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}.")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = env_bool("MDM_PRODUCTION")
DEBUG = env_bool("DEBUG", default=False) and not PRODUCTION


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when MDM_PRODUCTION=1.")
    # Demo and development: generate once and keep it, so sessions survive a restart.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when MDM_PRODUCTION=1.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "mdm_portal.core.admin_apps.MDMAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_celery_beat",
    # Before mdm_portal.core: core.admin puts these libraries' ModelAdmins under authz.
    "mdm_portal.core.admin_apps.SignInSecurityConfig",  # axes
    "django_otp",
    "mdm_portal.core.admin_apps.TwoFactorConfig",  # django_otp.plugins.otp_totp
    "csp",
    "mdm_portal.core",
    "devices",
    "policies",
    "apps",
    "retirement",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mdm_portal.core.middleware.RefuseNulCharactersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mdm_portal.urls"
WSGI_APPLICATION = "mdm_portal.wsgi.application"

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
            ],
        },
    },
]

# Database: DATABASE_URL, or a SQLite file under var/ for the demo.
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'mdm.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # The demo runs web, worker and beat on one SQLite file: WAL lets readers and one writer
    # work at once, IMMEDIATE transactions avoid "database is locked" on lock upgrades.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "core.User"

AUTHENTICATION_BACKENDS = [
    # First: refuses a username + address that is locked out before any password is checked.
    "mdm_portal.core.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# Guardian: no anonymous user row; object grants live on scopes (see core.rbac).
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
# Outside production, files are re-read when they change (an edited stylesheet while the demo runs
# would otherwise be served with its old length, and the browser waits for the missing bytes).
WHITENOISE_AUTOREFRESH = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

# Email: SMTP in production; elsewhere files under var/mail/ (the demo's outbox, one file per sending batch).
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = Path(os.environ.get("EMAIL_FILE_PATH", VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "mdm@localhost")
# Where employees reach the Company Portal (scheme and host, no trailing slash): links in emails,
# which are sent by background jobs that have no request to take the address from.
MDM_PUBLIC_URL = os.environ.get("MDM_PUBLIC_URL", "http://localhost:8000").rstrip("/")
# Who employees contact with questions, as a phrase that fits "contact ...": shown in emails and the portal.
MDM_HELPDESK_CONTACT = os.environ.get("MDM_HELPDESK_CONTACT", "your IT helpdesk")

# Security (see docs/threat-model.md). Production enforces HTTPS; TLS usually ends at a proxy that
# sets X-Forwarded-Proto.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    if env_bool("SECURE_PROXY_SSL_HEADER", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Messages live in the session, not in a cookie: a new API token's one-time display passes through
# them, and a signed cookie is readable by anyone holding the browser's cookie jar.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Content Security Policy (django-csp): our own origin only, no inline script or style without the
# per-response nonce (``nonce="{{ request.csp_nonce }}"`` on a script or style block), never framed.
# Style attributes cannot carry a nonce, so templates and format_html use classes from the static
# sheets (static/console/*.css, static/portal/*.css) instead; CSS that scripts set through the CSSOM
# (element.style) is not inline and stays allowed. tests/browser/test_csp.py fails on any violation.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Cache: shared by every web process when REDIS_URL is set (rate limits, throttles); in-process
# memory for the single-process demo and the tests.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mdm"}}

# Sign-in lockout (django-axes) for the IT console, the Company Portal and the app sign-in: after
# AXES_FAILURE_LIMIT failed attempts for one username from one address within AXES_COOLOFF_TIME,
# that username is refused from that address until the cool-off ends or an administrator deletes
# the lockout (IT console > Axes > Access attempts). Attempts are rows in the database, so every
# web process sees them. API tokens and device secrets never go through it.
AXES_FAILURE_LIMIT = int(os.environ.get("MDM_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("MDM_LOGIN_LOCKOUT_MINUTES", "15")) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USE_ATTEMPT_EXPIRATION = True
AXES_CLIENT_IP_CALLABLE = "mdm_portal.core.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "mdm_portal.core.lockout.lockout_response"
AXES_VERBOSE = False

# Second factor (django-otp, TOTP): a staff member with a confirmed authenticator app gives its
# code when signing in to the IT console. MDM_REQUIRE_STAFF_OTP sends staff without one to set
# it up before they can use the console. The Company Portal stays password-only.
MDM_REQUIRE_STAFF_OTP = env_bool("MDM_REQUIRE_STAFF_OTP", default=False)
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Device lifecycle portal")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Rate limits on unauthenticated or machine-facing endpoints (DRF throttles, counted in the cache
# above): "<count>/<second|minute|hour|day>".
MDM_ENROLL_RATE = os.environ.get("MDM_ENROLL_RATE", "60/minute")  # per client address
MDM_ACCESS_CHECK_RATE = os.environ.get("MDM_ACCESS_CHECK_RATE", "6000/minute")  # per gate (API token)

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mdm_portal.core.api.authentication.APITokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["mdm_portal.core.api.permissions.AuthzPermission"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "mdm_portal.core.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "mdm_portal.core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "mdm_portal.core.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Device lifecycle management portal API",
    "DESCRIPTION": (
        "REST API for automation: everything the console does. Authenticate with an API token "
        "(`Authorization: Bearer mdm_...`) created in the admin under API tokens."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from our own static files: the console works without reaching a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "EnrollmentTransportEnum": "devices.choices.EnrollmentTransport",
        "IdentifierImportStatusEnum": "devices.choices.IdentifierImportStatus",
    },
}

# Celery: a broker that needs no server by default (kombu's file-system transport under var/).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# A web request that sends a task never waits long for a broker that is down: one attempt with a short
# connection timeout, and the message waits in the outbox (mdm_portal/core/outbox.py) until it is back.
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("CELERY_BROKER_CONNECTION_TIMEOUT", "2"))
# A broker that accepts the connection but never answers (frozen, paused) must not hold a request
# forever either: without a socket timeout the first command waits for a reply that never comes.
CELERY_BROKER_SOCKET_TIMEOUT = float(os.environ.get("CELERY_BROKER_SOCKET_TIMEOUT", "5"))
if not CELERY_BROKER_URL.startswith("filesystem://"):
    # Opening a channel to send: one quick retry, not kombu's default of three with pauses (2 s).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A message a worker took but never acknowledged (the worker was killed) goes back to the queue
    # after this many seconds; longer than the longest task (the fleet sweeps take minutes).
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "visibility_timeout": int(os.environ.get("CELERY_BROKER_VISIBILITY_TIMEOUT", "3600")),
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        "socket_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Device management
MDM_CHECKIN_INTERVAL_SECONDS = int(os.environ.get("MDM_CHECKIN_INTERVAL_SECONDS", "900"))
MDM_AGENT_MAX_BODY_BYTES = 256 * 1024
# What the device agent app is called where employees install it (enrolment steps, fix steps).
MDM_AGENT_NAME = os.environ.get("MDM_AGENT_NAME", "MDM Agent")
MDM_APP_PACKAGE_MAX_BYTES = int(os.environ.get("MDM_APP_PACKAGE_MAX_BYTES", str(2 * 1024**3)))  # 2 GiB
# Resource gates: whether a device whose compliance has not been evaluated yet (enrolled, no
# inventory reported) gets through. Off by default: only compliant devices and devices in their
# grace period pass.
MDM_ACCESS_ALLOW_NOT_EVALUATED = env_bool("MDM_ACCESS_ALLOW_NOT_EVALUATED", default=False)
# Key(s) that encrypt stored profile secrets (Wi-Fi and account passwords): comma-separated Fernet
# keys, newest first, so a key can be rotated. Default: derived from SECRET_KEY (changing SECRET_KEY
# then makes stored secrets unreadable: set this in production).
MDM_SECRETS_KEYS = [k.strip() for k in os.environ.get("MDM_SECRETS_KEYS", "").split(",") if k.strip()]
