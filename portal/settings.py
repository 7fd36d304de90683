"""Parallel Track settings, read from the environment.

The embedded default (no environment at all) is one machine: SQLite, an in-memory channel layer and the
generation worker inside the portal process. Production mode is switched on by DATABASE_URL and REDIS_URL:
PostgreSQL, Redis as the Celery broker and the channels layer, separate Celery worker processes.
"""

import os
import sys
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
SECRET_KEY = envstr("SECRET_KEY", "parallel-track-embedded-default-not-secret")
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
    "rest_framework.authtoken",
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
        "rest_framework.authentication.TokenAuthentication",
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
