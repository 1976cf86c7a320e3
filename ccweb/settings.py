"""ccweb settings: one module, every value from the environment.

Unset variables give the embedded default (SQLite, in-process cache, Kafka
off, a file-system Celery broker) so a bare checkout runs with `make run`.
Values that are set but wrong stop start-up with one line naming the
variable (see `ccweb.config`).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ

from ccweb.config import (
    ConfigError,
    parse_house_edge,
    parse_prob_adjust,
    parse_recommendation_rules,
    parse_rfm_rules,
    require_positive_int,
)

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"expected true/false, got {raw!r}")


def _env_secret(name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (docker secrets)."""
    if os.environ.get(f"{name}_FILE"):
        return Path(os.environ[f"{name}_FILE"]).read_text().strip()
    return os.environ.get(name) or None


def _local_secret(filename: str) -> str:
    """A random key kept in the working tree, so every local process agrees."""
    path = BASE_DIR / filename
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# --- Core ---------------------------------------------------------------------

DEBUG = _env_bool("DEBUG", False)
TESTING = _env_bool("CCWEB_TESTING", False)

SECRET_KEY = _env_secret("SECRET_KEY")
JWT_SECRET = _env_secret("JWT_SECRET")
if not DEBUG and not TESTING:
    for _name, _value in (("SECRET_KEY", SECRET_KEY), ("JWT_SECRET", JWT_SECRET)):
        if not _value:
            raise ConfigError(_name, "is required when DEBUG is off")
SECRET_KEY = SECRET_KEY or _local_secret(".secret_key")
JWT_SECRET = JWT_SECRET or _local_secret(".jwt_secret")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS",
    default=["127.0.0.1", "localhost", "[::1]"] if DEBUG or TESTING else [],
)
if not DEBUG and not TESTING and not ALLOWED_HOSTS:
    raise ConfigError("ALLOWED_HOSTS", "is required when DEBUG is off")
CORS_ALLOWED_ORIGINS = env.list(
    "CORS_ALLOWED_ORIGINS",
    default=["http://localhost:3000", "http://127.0.0.1:3000"] if DEBUG else [],
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django_prometheus",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "django_celery_beat",
    "ccweb.accounts",
    "actions",
    "visits",
    "segments",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "ccweb.middleware.RequestIdMiddleware",
    "ccweb.middleware.JsonErrorsMiddleware",
    "ccweb.middleware.BodySizeLimitMiddleware",
    "ccweb.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # Sessions, session auth and messages serve the admin only; the API uses
    # JWT (see ccweb.middleware.browser_only). API views are CSRF-exempt.
    "ccweb.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "ccweb.middleware.AuthenticationMiddleware",
    "ccweb.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "ccweb.urls"
WSGI_APPLICATION = "ccweb.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The covering index of user_actions helps PostgreSQL; SQLite simply ignores
# its INCLUDE columns, which is fine for the embedded default.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "ccweb" / "templates"],
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

_VALIDATORS_MODULE = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS_MODULE}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS_MODULE}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS_MODULE}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS_MODULE}.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Everything is stored and computed in UTC, whatever the server's own zone.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Bodies larger than this get 413 before any view reads them.
MAX_REQUEST_BODY_BYTES = require_positive_int(
    "MAX_REQUEST_BODY_BYTES", env.int("MAX_REQUEST_BODY_BYTES", default=1_048_576)
)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Database ----------------------------------------------------------------
# DATABASE_URL, else a SQLite file in the working directory. Connections are
# kept open between requests; a dead one is detected by health checks.

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{Path.cwd() / 'ccweb.sqlite3'}"
    )
}
_db = DATABASES["default"]
_statement_timeout_ms = env.int("DB_STATEMENT_TIMEOUT_MS", default=30_000)
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    # Off by default: the check costs a round trip on every request. After a
    # database restart each thread's first query then fails (503) and the
    # broken connection is dropped at the end of that request.
    _db["CONN_HEALTH_CHECKS"] = _env_bool("DB_CONN_HEALTH_CHECKS", False)
    _db.setdefault("OPTIONS", {}).update(
        {
            # Fail fast when PostgreSQL is down instead of hanging a worker.
            "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=2),
            "options": f"-c statement_timeout={_statement_timeout_ms}",
            # Server-side parameters, and psycopg prepares a statement the
            # fifth time a connection runs it, so PostgreSQL stops planning
            # the hot ones on every request: planning the action insert
            # costs three times its execution. Django leaves preparing off
            # by default for transaction-mode poolers (PgBouncer before
            # 1.21); DB_PREPARE_THRESHOLD=0 turns it off for such a setup.
            "server_side_binding": _env_bool("DB_SERVER_SIDE_BINDING", True),
            "prepare_threshold": env.int("DB_PREPARE_THRESHOLD", default=5) or None,
        }
    )
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            # WAL lets the web process and the Celery worker share the file.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    _db["TEST"] = {"NAME": None}
DATABASE_IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"

# --- Redis / cache -----------------------------------------------------------
# REDIS_URL holds the cache, streaks, locks and throttle counters. Without it
# an in-process cache stands in (fine for one local process only).

REDIS_URL = env.str("REDIS_URL", default="") or None
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="ccweb"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Short timeouts: a dead Redis must degrade a request, not hang it.
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "ccweb",
        }
    }

# --- Kafka -------------------------------------------------------------------
# KAFKA_BROKER (alias KAFKA_BOOTSTRAP_SERVERS). Unset: publishing is off and
# events wait in the outbox until a broker is configured.

KAFKA_BROKER = (
    env.str("KAFKA_BROKER", default="")
    or env.str("KAFKA_BOOTSTRAP_SERVERS", default="")
) or None
KAFKA_TOPIC_USER_ACTIONS = env.str(
    "KAFKA_TOPIC_USER_ACTIONS", default="topic_user_actions"
)
if not KAFKA_TOPIC_USER_ACTIONS.strip():
    raise ConfigError("KAFKA_TOPIC_USER_ACTIONS", "must not be empty")
# Outbox and relay (docs/ingestion.md). A message waits at most
# KAFKA_MESSAGE_TIMEOUT_MS for the broker; a row is leased to whoever
# publishes it for OUTBOX_LEASE_SECONDS, which must be longer.
KAFKA_MESSAGE_TIMEOUT_MS = require_positive_int(
    "KAFKA_MESSAGE_TIMEOUT_MS", env.int("KAFKA_MESSAGE_TIMEOUT_MS", default=10_000)
)
# How long a producer gathers messages before it sends them. Each web
# worker has its own fast-path producer, so under load the broker gets a
# request from every worker each linger period. At 5 ms that is about one
# request an action; 50 ms cut the CPU a request by about a sixth, 200 ms
# halves the broker's share again (docs/benchmarks.md). Events reach Kafka
# that much later; the relay flushes its batches and does not wait for it.
KAFKA_LINGER_MS = env.int("KAFKA_LINGER_MS", default=200)
OUTBOX_LEASE_SECONDS = require_positive_int(
    "OUTBOX_LEASE_SECONDS", env.int("OUTBOX_LEASE_SECONDS", default=30)
)
if OUTBOX_LEASE_SECONDS * 1000 <= KAFKA_MESSAGE_TIMEOUT_MS + 5_000:
    raise ConfigError(
        "OUTBOX_LEASE_SECONDS", "must exceed KAFKA_MESSAGE_TIMEOUT_MS by 5 s or more"
    )
OUTBOX_RETRY_BASE_SECONDS = env.float("OUTBOX_RETRY_BASE_SECONDS", default=1.0)
OUTBOX_RETRY_MAX_SECONDS = env.float("OUTBOX_RETRY_MAX_SECONDS", default=30.0)
OUTBOX_RELAY_BATCH_SIZE = require_positive_int(
    "OUTBOX_RELAY_BATCH_SIZE", env.int("OUTBOX_RELAY_BATCH_SIZE", default=5_000)
)
# Single actions posted at the same moment to one web worker share one
# insert statement (actions.combining); false gives each its own.
ACTIONS_COMBINE_INSERTS = env.bool("ACTIONS_COMBINE_INSERTS", default=True)
# Distinct action types a process labels in ccweb_actions_recorded_total;
# later ones are counted as "other".
ACTIONS_METRIC_MAX_TYPES = env.int("ACTIONS_METRIC_MAX_TYPES", default=50)

# --- Celery ------------------------------------------------------------------
# CELERY_BROKER_URL, else REDIS_URL, else a file-system broker under
# .celery/ so that `make run` has a real worker and beat without servers.

CELERY_BROKER_URL = (
    env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
)
if CELERY_BROKER_URL == "filesystem://":
    _celery_dir = BASE_DIR / ".celery"
    for _sub in ("queue", "processed", "control"):
        (_celery_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep Django's JSON logging in the worker instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Segments and personalisation ---------------------------------------------

RFM_WINDOW_DAYS = require_positive_int(
    "RFM_WINDOW_DAYS", env.int("RFM_WINDOW_DAYS", default=30)
)
# RFM groups, first matching rule wins; R is the raw recency in days, F the
# action count, M the money spent. RFM_RULES_JSON replaces the whole list
# (format in docs/rfm.md). Everyone else is "Low".
RFM_RULES = [
    # (group, recency at most, frequency at least, monetary at least)
    ("Whale", 2, 30, 10_000.0),
    ("High Engaged", 5, 15, 2_000.0),
    ("Medium", 15, 5, 100.0),
]
if os.environ.get("RFM_RULES_JSON"):
    RFM_RULES = parse_rfm_rules(os.environ["RFM_RULES_JSON"])
# Soft time limit of one batch run (Celery task and SQL statement timeout).
RFM_TIME_LIMIT_SECONDS = require_positive_int(
    "RFM_TIME_LIMIT_SECONDS", env.int("RFM_TIME_LIMIT_SECONDS", default=1800)
)
SEGMENT_PROB_ADJUST = parse_prob_adjust(
    os.environ.get(
        "SEGMENT_PROB_ADJUST_JSON", '{"Whale": 0.02, "Medium": 0.0, "Low": -0.02}'
    )
)
HOUSE_EDGE = parse_house_edge(
    os.environ.get("HOUSE_EDGE_JSON", '{"Whale": 0.05, "Medium": 0.10, "Low": 0.15}')
)

# The recommendation table of the specification: the first matching row
# wins, None matches any value. RECOMMENDATION_RULES_JSON replaces the whole
# table (format in docs/personalization.md).
RECOMMENDATION_RULES = [
    # (rfm_group, risk_profile, base probability, recommended time window)
    ("Whale", "High-Risk", 0.75, "next 2 hours"),
    ("Whale", None, 0.60, "next 4 hours"),
    ("High Engaged", None, 0.55, "next 4 hours"),
    ("Medium", "Low-Risk", 0.50, "next 6 hours"),
    ("Medium", None, 0.40, "next 6 hours"),
    ("Low", None, 0.25, "next 24 hours"),
]
# (base probability, time window) when no row matches.
RECOMMENDATION_DEFAULT = (0.10, "any time")
if os.environ.get("RECOMMENDATION_RULES_JSON"):
    RECOMMENDATION_RULES, RECOMMENDATION_DEFAULT = parse_recommendation_rules(
        os.environ["RECOMMENDATION_RULES_JSON"]
    )
# Lifetime of the user profile the recommendation caches in Redis, a safety
# net behind the markers that make it stale (segments.profile_cache); 0 reads
# PostgreSQL on every recommendation.
SEGMENT_PROFILE_CACHE_SECONDS = env.int("SEGMENT_PROFILE_CACHE_SECONDS", default=3600)
if SEGMENT_PROFILE_CACHE_SECONDS < 0:
    raise ConfigError(
        "SEGMENT_PROFILE_CACHE_SECONDS",
        f"must be 0 or a positive integer, got {SEGMENT_PROFILE_CACHE_SECONDS}",
    )

# --- REST framework, JWT, OpenAPI ---------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "ccweb.authentication.CachedJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSON renderer, parser and negotiation, cheaper (ccweb.content).
    "DEFAULT_RENDERER_CLASSES": ["ccweb.content.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["ccweb.content.FastJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "ccweb.content.JSONFirstNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ccweb.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.str("THROTTLE_AUTH_RATE", default="20/min"),
        "invite": env.str("THROTTLE_INVITE_RATE", default="30/min"),
    },
    # Trusted proxies in front of the app; throttles key clients by the
    # address they saw. 0: REMOTE_ADDR only, so X-Forwarded-For is ignored.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SIMPLE_JWT = {
    "SIGNING_KEY": JWT_SECRET,
    "ALGORITHM": "HS256",
    "ACCESS_TOKEN_LIFETIME": timedelta(
        minutes=env.int("JWT_ACCESS_MINUTES", default=15)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ccweb API",
    "DESCRIPTION": "Backend of the casino club app: actions, visits, segments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Logging -----------------------------------------------------------------
# One JSON object per line on stdout, each with the request id.

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "ccweb.request_id.RequestIdLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
            },
            "timestamp": False,
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's own console handlers so every line is JSON.
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {
            "handlers": ["stdout"],
            "level": "WARNING",
            "propagate": False,
        },
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Production hardening (checked by `manage.py check --deploy`) -------------

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", not TESTING)
    SECURE_REDIRECT_EXEMPT = [r"^health", r"^metrics"]
    SESSION_COOKIE_SECURE = not TESTING
    CSRF_COOKIE_SECURE = not TESTING
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Readiness checks that make /health/ready answer 503 when they fail.
READINESS_REQUIRED = env.list("READINESS_REQUIRED", default=["database"])
