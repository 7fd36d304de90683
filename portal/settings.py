"""Parallel Track settings, read from the environment.

The embedded default (no environment at all) is one machine: SQLite, an in-memory channel layer and the
generation worker inside the portal process. Production mode is switched on by DATABASE_URL and REDIS_URL:
PostgreSQL, Redis as the Celery broker and the channels layer, separate Celery worker processes.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

# torch's OpenMP workers spin while idle; beside the web server and OIIO threads that costs ~5x per step.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models load only from local directories


def envbool(name: str, default: str = "False") -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    return int(os.getenv(name, default))


def envstr(name: str, default: str = "") -> str:
    """A setting from NAME, or from the file named by NAME_FILE (for secrets)."""
    file_name = os.getenv(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.getenv(name, default)


DEBUG = envbool("DEBUG", "False")
EMBEDDED_SECRET_KEY = "parallel-track-embedded-default-not-secret"  # public: production refuses it (below)
SECRET_KEY = envstr("SECRET_KEY", EMBEDDED_SECRET_KEY)
ALLOWED_HOSTS = [h for h in os.getenv("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# Where the portal keeps its files. Tests keep theirs apart from a demo running from the same checkout.
_TESTING = "pytest" in sys.modules
VAR_DIR = Path(os.getenv("PT_VAR_DIR", str(BASE_DIR / "var" / ("test" if _TESTING else "embedded"))))
WORK_ROOT = Path(os.getenv("PT_WORK_ROOT", str(VAR_DIR / "work")))
PUBLISH_ROOT = Path(os.getenv("PT_PUBLISH_ROOT", str(VAR_DIR / "publish")))
MODEL_ROOT = Path(os.getenv("PT_MODEL_ROOT", str(VAR_DIR / "models")))
# Shared storage the portal may read plates and mattes from; any other path is refused.
PLATE_ROOTS = [Path(p) for p in os.getenv("PT_PLATE_ROOTS", str(VAR_DIR / "plates")).split(os.pathsep) if p]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "portal",
    "generation",
    "review",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

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

DATABASE_URL = os.getenv("DATABASE_URL", "")
if DATABASE_URL:
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", "0"))}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.getenv("PT_SQLITE_PATH", str(VAR_DIR / "portal.sqlite3")),
            # The in-process worker writes while the web side reads: wait instead of failing.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
            # A file, not memory: browser tests share the test database with a portal subprocess.
            "TEST": {"NAME": os.getenv("PT_SQLITE_TEST_PATH", str(VAR_DIR / "test.sqlite3"))},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.getenv("REDIS_URL", "")
PRODUCTION_MODE = bool(REDIS_URL)

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: one Redis message per event per server process, fanned out to its viewers there (the
            # core layer queued a message per viewer: 50 viewers, 50 Redis round trips per event). Nothing is
            # stored, and nothing need be: a viewer fills any gap from the database by seq.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # redis-py 8 caps a pool at 100 connections unless told otherwise, and times reads out after 5 s.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": envint("REDIS_MAX_CONNECTIONS", "500"),
                                  "socket_timeout": 30}],
                       # Redis pub/sub ignores the database number: two portals on one Redis (production and
                       # staging, two test runs) would hear each other's request-<id> groups. The prefix keeps
                       # them apart: by default it names the Redis database the portal uses.
                       "prefix": os.getenv("PT_CHANNEL_PREFIX",
                                           "pt-db" + (urlsplit(REDIS_URL).path.strip("/") or "0"))},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis in production; on the embedded default tasks run on a worker thread inside the portal.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a killed worker's task goes back to the queue
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {
    "generation.tasks.*": {"queue": "gpu"},
    "review.tasks.*": {"queue": "publish"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", "3600")}
PT_EMBEDDED_WORKER = not PRODUCTION_MODE and envbool("PT_EMBEDDED_WORKER", "True")
# Faults (generation/leases.py, generation/recovery.py): a claim is a lease renewed every third of its length; a
# dead worker's work is taken over once it expires. Transient errors (I/O, a lost database or broker) are retried
# with exponential back-off up to the attempts below; bad input never. Time limits are per task (soft, then hard).
PT_LEASE_SECONDS = envint("PT_LEASE_SECONDS", "60")
PT_RETRY_BACKOFF_S = envint("PT_RETRY_BACKOFF_S", "5")
PT_RETRY_BACKOFF_MAX_S = envint("PT_RETRY_BACKOFF_MAX_S", "300")
PT_MAX_ATTEMPTS = envint("PT_MAX_ATTEMPTS", "4")
PT_GENERATE_SOFT_LIMIT_S = envint("PT_GENERATE_SOFT_LIMIT_S", str(6 * 3600))
PT_RELEASE_SOFT_LIMIT_S = envint("PT_RELEASE_SOFT_LIMIT_S", str(2 * 3600))
PT_HARD_LIMIT_GRACE_S = envint("PT_HARD_LIMIT_GRACE_S", "120")
PT_RECOVERY_INTERVAL_S = envint("PT_RECOVERY_INTERVAL_S", "30")  # a production worker's sweep for stranded work
# Fault injection (the fault suite only): a slow work area, each frame held this long once written, so a fault
# lands while a variation is part-way through its frames however fast the machine is. 0 in every real run.
PT_FAULT_FRAME_DELAY_S = float(os.getenv("PT_FAULT_FRAME_DELAY_S", "0"))
PT_FAIR_SHARE_BY = os.getenv("PT_FAIR_SHARE_BY", "user")  # round-robin between "user"s or "show"s
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True  # its message is redelivered: no half-run twice
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

AUTH_PASSWORD_VALIDATORS = []
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
PT_SERVE_STATIC = envbool("PT_SERVE_STATIC", "True")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.tokens.TokenAuthentication",  # hashed, named, expiring tokens (portal/tokens.py)
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "portal.api_errors.PortalAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "portal.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "portal.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Parallel Track API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# Colour: a new show's OCIO config, pinned on the show to its versioned name (portal.models.default_ocio_config):
# $OCIO, else the engine's DEFAULT_CONFIG (a versioned built-in that DCCs on OCIO >= 2.3 load; never *-latest).
PT_OCIO_CONFIG = os.getenv("OCIO", "ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3")
PT_DEVICE = os.getenv("PT_DEVICE", "")  # "" = CUDA when present, else CPU
PT_PUBLISH_THREADS = int(os.getenv("PT_PUBLISH_THREADS") or 0)  # frames a release writes at once; 0 = one per core

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "WARNING")},
}

# --- Auth hardening (issue 17, helper "auth"): tokens, throttling, passwords, production refusals, cookies, CSP.
PT_TOKEN_DAYS = envint("PT_TOKEN_DAYS", "90")  # how long a new API token lasts unless its owner says otherwise

# Production refuses to start with the public embedded key or with DEBUG (a test run may: it sets its own).
if PRODUCTION_MODE and not _TESTING:
    from django.core.exceptions import ImproperlyConfigured

    if SECRET_KEY == EMBEDDED_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("production mode (REDIS_URL is set) needs its own SECRET_KEY or SECRET_KEY_FILE "
                                   "(50+ random characters); the embedded default is public")
    if DEBUG:
        raise ImproperlyConfigured("production mode (REDIS_URL is set) refuses DEBUG=1: it shows settings and paths")

# Login throttling (django-axes): after PT_LOGIN_FAILURE_LIMIT wrong passwords for one user name from one address,
# that pair is locked out (429) for PT_LOGIN_COOLOFF_MINUTES, right password or not.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = ["portal.throttling.LoginThrottle", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("PT_LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = timedelta(minutes=envint("PT_LOGIN_COOLOFF_MINUTES", "15"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = envint("PT_PROXY_COUNT", "0") or None  # proxies in front that add X-Forwarded-For
AXES_IPWARE_PROXY_ORDER = "right-most"  # nginx appends the address it saw; what the client sent is to the left
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else \
    ["REMOTE_ADDR"]

# API throttling: per user (token or session) and per address for anonymous calls. Counted in the cache: Redis in
# production, so every server process shares the counts.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["portal.throttling.UserRate", "portal.throttling.AnonRate"]
PT_API_RATES = {"user": os.getenv("PT_API_RATE_USER", "1200/min"), "anon": os.getenv("PT_API_RATE_ANON", "120/min")}
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": os.getenv("PT_CACHE_PREFIX", "pt-cache")}}

# Passwords: Django's validators (length, not like the user name, not a common password, not all digits).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": envint("PT_PASSWORD_MIN_LENGTH", "12")}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# HTTPS: all off by default (the embedded default is plain HTTP on one machine); deploy/env.example turns them on.
SESSION_COOKIE_SECURE = envbool("PT_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = envbool("PT_SSL_REDIRECT")
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]  # probes from the machine itself, over plain HTTP
SECURE_HSTS_SECONDS = envint("PT_HSTS_SECONDS", "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("PT_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = envbool("PT_HSTS_PRELOAD")
if envbool("PT_TLS_PROXY"):  # nginx terminates TLS and says so in X-Forwarded-Proto
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content Security Policy (portal/csp.py): scripts, styles and everything else from the portal only; no inline
# script or style, no eval, no framing. Pages keep their script in static/js and their style in static/css.
MIDDLEWARE += ["portal.csp.ContentSecurityPolicy"]
PT_CSP = os.getenv("PT_CSP", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                             "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                             "form-action 'self'; frame-ancestors 'none'")
# --- Operations (issue 17): /health/, /metrics, JSON logs, media through nginx. -------------------------------
INSTALLED_APPS += ["health_check"]
MIDDLEWARE.insert(0, "portal.metrics.RequestCounter")  # first: counts every response, 404s and 500s too
PT_HEALTH_MIN_FREE_GB = float(os.getenv("PT_HEALTH_MIN_FREE_GB", "5"))  # /health/ fails under this, per root
PT_METRICS_TOKEN = envstr("PT_METRICS_TOKEN", "")  # Prometheus's bearer token; unset: staff logins only
# nginx in front: media views answer with X-Accel-Redirect to this internal location (deploy/nginx), which
# maps it onto PT_WORK_ROOT; unset: Django streams the file itself.
PT_MEDIA_ACCEL_PREFIX = os.getenv("PT_MEDIA_ACCEL_PREFIX", "")
if os.getenv("PT_LOG_FORMAT", "text") == "json":
    LOGGING["formatters"] = {"json": {"()": "portal.jsonlog.JsonFormatter"}}
    LOGGING["handlers"]["console"]["formatter"] = "json"
    # uvicorn's and celery's own loggers to the same JSON lines (celery leaves the root logger alone).
    LOGGING["loggers"] = {name: {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "WARNING"),
                                 "propagate": False} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False
