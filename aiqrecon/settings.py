"""Settings for aiqrecon, all read from the environment (see docs/configuration.md).

With no variables set the embedded default runs: SQLite in WAL mode, django-q2 on the ORM
broker, the local AIQ sandbox and localstripe. DATABASE_URL switches to PostgreSQL and
REDIS_URL to the Redis broker.
"""

import os
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from aiqrecon.database import databases
from aiqrecon.env import (
    env_bool,
    env_choice,
    env_decimal,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("AIQRECON_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

MODE = env_choice("AIQRECON_MODE", "development", ("development", "production"))
PRODUCTION = MODE == "production"
# Off in development too (make run): Django's debug pages list every URL on a 404 and show
# local variables, secrets among them, on an error. DJANGO_DEBUG=true turns it on by hand.
DEBUG = env_bool("DJANGO_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when AIQRECON_MODE=production.")

# A development key only works in development mode; production refuses to start without one.
_DEV_SECRET_KEY = "dev-only-aiqrecon-key-not-for-production-0123456789abcdef"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY", None if PRODUCTION else _DEV_SECRET_KEY)
if SECRET_KEY is None:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when AIQRECON_MODE=production.")
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must list the host names when AIQRECON_MODE=production "
        "(comma-separated, e.g. recon.example.com)."
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "aiqrecon",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_q",
    "django_htmx",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "staff",
    "ledger",
    "payments",
    "sales",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "aiqrecon.security.SecurityHeadersMiddleware",
    "aiqrecon.security.NulCharacterGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "staff.audit_hooks.AuditActorMiddleware",
    # which companies the person sees and has chosen; other companies' object URLs are 404
    "aiqrecon.companies.CompanyScopeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "aiqrecon.urls"
WSGI_APPLICATION = "aiqrecon.wsgi.application"

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
                "staff.context_processors.roles",
                "aiqrecon.companies.companies",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", None, schemes=("postgres", "postgresql", "sqlite"))
# Any SQLite configuration (the embedded default or a sqlite:/// URL) gets WAL, a busy timeout
# and IMMEDIATE transactions (aiqrecon/database.py); every new connection is checked for them.
DATABASES = databases(
    DATABASE_URL,
    sqlite_path=env_str("SQLITE_PATH", str(VAR_DIR / "aiqrecon.sqlite3")),
    sqlite_test_path=env_str("SQLITE_TEST_PATH", None),
    busy_timeout_seconds=env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20, minimum=1, maximum=600),
    cache_mib=env_int("SQLITE_CACHE_MIB", 128, minimum=2, maximum=16384),
    mmap_mib=env_int("SQLITE_MMAP_MIB", 1024, minimum=0, maximum=65536),
    test_dir=VAR_DIR,
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and queue ------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-q2: the queue only wakes work; the outbox table is the truth (see RELIABILITY.md).
# retry must comfortably exceed timeout plus time spent waiting in the local queue, or a
# slow task is delivered twice; catch_up=False so a restart does not replay missed slots.
# 300 s: an outbox drain task (OUTBOX_DRAIN_SECONDS) plus one command's worst case (its lease)
# must fit inside the timeout; ledger.outbox.checks fails start-up when it does not.
Q_TIMEOUT_SECONDS = env_int("Q_TIMEOUT_SECONDS", 300, minimum=10, maximum=3600)
Q_CLUSTER = {
    "name": "aiqrecon",
    "workers": env_int("Q_WORKERS", 2, minimum=1, maximum=64),
    "timeout": Q_TIMEOUT_SECONDS,
    "retry": Q_TIMEOUT_SECONDS * 3,
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 3, minimum=1, maximum=100),
    "ack_failures": True,
    "catch_up": False,
    "save_limit": env_int("Q_SAVE_LIMIT", 250, minimum=0, maximum=100000),
    "queue_limit": env_int("Q_QUEUE_LIMIT", 50, minimum=1, maximum=10000),
    "bulk": 10,
    # ORM broker only (Redis blocks on BLPOP): how long an idle cluster sleeps between looks
    # for new tasks, i.e. the delay before a woken outbox drain starts. One indexed SELECT per
    # look; at 0.5 s the wait was a tenth of a 4-worker bulk approval's drain time.
    "poll": 0.1,
    "label": "Task queue",
    # Scaled out: exactly one cluster runs schedules (Q_SCHEDULER=false on the others).
    "scheduler": env_bool("Q_SCHEDULER", True),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    # Without this django-q2 silently uses Redis.
    Q_CLUSTER["orm"] = "default"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "staff.passwords.WordAndNumberValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Sign-in lock-out (staff/login_throttle.py), counted in the database by every process.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20, minimum=1, maximum=10000)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1, maximum=86400)
# Behind a proxy: the header it puts the client's address in, and how many proxies append to it
LOGIN_CLIENT_ADDRESS_HEADER = env_str("LOGIN_CLIENT_ADDRESS_HEADER", "")
LOGIN_TRUSTED_PROXY_COUNT = env_int("LOGIN_TRUSTED_PROXY_COUNT", 1, minimum=1, maximum=10)
# Signed out after a working day without a request (every request moves the expiry on).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_HOURS", 8, minimum=1, maximum=720) * 3600
SESSION_SAVE_EVERY_REQUEST = True

# --- I18N / static --------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- External systems -----------------------------------------------------------------------
# AIQ: entities name their region; "sandbox" means the local AIQ stand-in at AIQ_SANDBOX_URL.
# Credentials never live in the database: entity "DEMO" reads AIQ_DEMO_PARTNER_KEY,
# AIQ_DEMO_USER_KEY (Integration 1.1) or AIQ_DEMO_CLIENT_ID, AIQ_DEMO_CLIENT_SECRET (2.0).
AIQ_SANDBOX_URL = env_url("AIQ_SANDBOX_URL", "http://127.0.0.1:8765", schemes=("http", "https"))
AIQ_CONNECT_TIMEOUT_SECONDS = env_int("AIQ_CONNECT_TIMEOUT_SECONDS", 5, minimum=1, maximum=120)
AIQ_READ_TIMEOUT_SECONDS = env_int("AIQ_READ_TIMEOUT_SECONDS", 30, minimum=1, maximum=600)

# Outbox executor (ledger/outbox). A row's lease is renewed before each of its steps (the read
# back; the send) and while it waits its turn in a batch; it must outlast the AIQ calls of one
# step (at most OUTBOX_CALLS_PER_STEP: a credit note's look-up, template, save and post, plus
# a new login), or a second worker could take the row while the first still waits on AIQ.
OUTBOX_CALLS_PER_STEP = 5
OUTBOX_LEASE_SECONDS = env_int(
    "OUTBOX_LEASE_SECONDS",
    OUTBOX_CALLS_PER_STEP * (AIQ_CONNECT_TIMEOUT_SECONDS + AIQ_READ_TIMEOUT_SECONDS) + 30,
    minimum=1,
    maximum=3600,
)
# How long AIQ may still commit a write after we sent it (docs/configuration.md says why 180):
# an uncertain write is not read back, nor resent, before this has passed since its send.
OUTBOX_SETTLE_SECONDS = env_int("OUTBOX_SETTLE_SECONDS", 180, minimum=1, maximum=3600)
# The nightly drift check reads back what the outbox confirmed in this many days.
AIQ_DRIFT_DAYS = env_int("AIQ_DRIFT_DAYS", 7, minimum=1, maximum=366)
# Nightly schedules (the daily ones: drift check, catch-ups) start at this local hour, ten
# minutes apart, away from the working day's AIQ traffic (setup_schedules).
NIGHTLY_HOUR = env_int("NIGHTLY_HOUR", 2, minimum=0, maximum=23)
# Liveness (ledger/outbox/health.py): the outbox is wedged when rows have been due this long
# and no row changed meanwhile (a working cluster claims due rows within a sweep, every minute);
# `manage.py outbox_watchdog` checks every OUTBOX_WATCHDOG_SECONDS and restarts qcluster then.
OUTBOX_STALL_SECONDS = env_int("OUTBOX_STALL_SECONDS", 300, minimum=1, maximum=86400)
OUTBOX_WATCHDOG_SECONDS = env_int("OUTBOX_WATCHDOG_SECONDS", 60, minimum=1, maximum=3600)
OUTBOX_BATCH_SIZE = env_int("OUTBOX_BATCH_SIZE", 10, minimum=1, maximum=500)
OUTBOX_DRAIN_SECONDS = env_int("OUTBOX_DRAIN_SECONDS", 20, minimum=1, maximum=3600)
OUTBOX_BACKOFF_BASE_MS = env_int("OUTBOX_BACKOFF_BASE_MS", 5000, minimum=1, maximum=3600000)
OUTBOX_BACKOFF_MAX_SECONDS = env_int("OUTBOX_BACKOFF_MAX_SECONDS", 900, minimum=1, maximum=86400)
# Matching runs (payments/services/matching_shares.py): a run of at least this many payments is
# matched in MATCHING_WORKERS processes, each reading and matching its own customers' invoices.
MATCHING_WORKERS = env_int("MATCHING_WORKERS", min(os.cpu_count() or 1, 4), minimum=1, maximum=64)
# invoice numbers a matching run may look up in AIQ when the mirror does not have them yet
MATCHING_AIQ_LOOKUPS = env_int("MATCHING_AIQ_LOOKUPS", 20, minimum=0, maximum=500)
MATCHING_SHARES_MIN_PAYMENTS = env_int(
    "MATCHING_SHARES_MIN_PAYMENTS", 10_000, minimum=0, maximum=10_000_000
)
AIQ_SYNC_MINUTES = env_int("AIQ_SYNC_MINUTES", 15, minimum=1, maximum=1440)
AIQ_SYNC_OVERLAP_MINUTES = env_int("AIQ_SYNC_OVERLAP_MINUTES", 10, minimum=0, maximum=1440)

STRIPE_API_KEY = env_str("STRIPE_API_KEY", "sk_test_localstripe")
STRIPE_API_BASE = env_url("STRIPE_API_BASE", "http://127.0.0.1:8420", schemes=("http", "https"))
# Several secrets are accepted while a webhook secret is being rotated.
STRIPE_WEBHOOK_SECRETS = env_list("STRIPE_WEBHOOK_SECRETS", ["whsec_localstripe_dev"])
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)

GOCARDLESS_ACCESS_TOKEN = env_str("GOCARDLESS_ACCESS_TOKEN", None)
GOCARDLESS_ENVIRONMENT = env_choice("GOCARDLESS_ENVIRONMENT", "sandbox", ("sandbox", "live"))
GOCARDLESS_WEBHOOK_SECRETS = env_list("GOCARDLESS_WEBHOOK_SECRETS", ["gc_localdev_secret"])
# SmartDebit's API (collection reports, ARUDD/ADDACS/AUDDIS): unset = not used (files only).
SMARTDEBIT_API_URL = env_str("SMARTDEBIT_API_URL", "")
SMARTDEBIT_API_USER = env_str("SMARTDEBIT_API_USER", "")
SMARTDEBIT_API_PASSWORD = env_str("SMARTDEBIT_API_PASSWORD", "")
SMARTDEBIT_PSLID = env_str("SMARTDEBIT_PSLID", "")
# The AIQ company id (Entity.company_id) of money that arrives through no account of its own
# (ledger/companies.py: default_entity); empty: the only company. Money through a company's
# own Stripe/GoCardless/bank account belongs to that account's company.
PAYMENTS_ENTITY = env_str("PAYMENTS_ENTITY", "")

# --- Domain policy --------------------------------------------------------------------------
# Plans above this amount (in the payment's currency) need a second person's approval.
APPROVAL_THRESHOLD = env_decimal("APPROVAL_THRESHOLD", Decimal("1000.00"))
# The AIQ GL account unidentified money is parked on (an other receipt to it) until a person
# knows whose it is.
SUSPENSE_GL_ACCOUNT_CODE = env_str("SUSPENSE_GL_ACCOUNT_CODE", "9990")
# The GL account of the journal pair that moves money between customers of one group (a debit
# journal on the payer, a credit journal on the customer paid for): it nets to zero.
GROUP_TRANSFER_GL_ACCOUNT_CODE = env_str("GROUP_TRANSFER_GL_ACCOUNT_CODE", "9990")
# Cross-company receipts (money into one group company for another's invoice): the GL account,
# in the invoice's company, of what the receiving company owes it (the sales credit journal on
# the paying customer goes to it). The receiving company's side is the customer account AIQ's
# intercompany connection names for the other company.
INTERCOMPANY_GL_ACCOUNT_CODE = env_str("INTERCOMPANY_GL_ACCOUNT_CODE", "1400")
# The AIQ GL account VAT on sales is posted to (a duplicate credit note's reversing journal
# credits its tax back here).
AIQ_VAT_GL_ACCOUNT_CODE = env_str("AIQ_VAT_GL_ACCOUNT_CODE", "2200")

# --- API for other systems (docs/api.md) ------------------------------------------------------
# requests per API client, counted in the cache (Redis when REDIS_URL is set)
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "1200/min")
# each web process keeps a client it authenticated this long (0: read it on every request);
# a revoked token stops working in the other processes within this time
API_TOKEN_CACHE_SECONDS = env_int("API_TOKEN_CACHE_SECONDS", 5, minimum=0, maximum=60)
# idempotency keys are kept at least this long (never less than 24)
API_IDEMPOTENCY_HOURS = int(env_str("API_IDEMPOTENCY_HOURS", "48"))
# outgoing webhooks (api/webhooks.py): a POST's time limit, the first retry's delay (doubled
# each time, at most 6 h) and the attempts before a delivery is failed (a person can replay it)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
WEBHOOK_RETRY_SECONDS = env_int("WEBHOOK_RETRY_SECONDS", 60, minimum=1, maximum=3600)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 10, minimum=1, maximum=50)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.auth.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.auth.ClientScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.auth.ClientRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["api.auth.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "api.http.problem_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "aiqrecon API",
    "DESCRIPTION": "Receipts, allocations, other receipts and refunds into AccountsIQ, with "
    "the semantics of Sage Business Cloud's payments API and idempotency keys (docs/api.md).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "aiqrecon.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"zeep": {"level": "WARNING"}, "django_q": {"level": "WARNING"}},
}

# Sales invoices e-mailed to customers (sales/tasks.py): console locally, SMTP or a file backend
# where configured (EMAIL_HOST etc. are Django's own settings names).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "accounts@localhost")
