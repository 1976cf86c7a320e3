"""Liveness and readiness.

`/health` says the process answers; it touches nothing else. `/health/ready`
checks each dependency and reports `ok`, `disabled` (not configured) or the
error. Only the database is required by default: without Redis or Kafka
ccweb still serves (streaks degrade, events wait in the outbox), so a load
balancer should not take every replica out for them. READINESS_REQUIRED
names the checks that turn the answer into 503.
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

KAFKA_CHECK_TIMEOUT_SECONDS = 1.0
_kafka_admin = {"pid": None, "client": None}
_kafka_admin_lock = threading.Lock()


@csrf_exempt
@require_safe
def liveness(request):
    return JsonResponse({"status": "healthy"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_cache() -> str:
    if not settings.REDIS_URL:
        return "disabled"
    cache.set("health:probe", "1", timeout=5)
    if cache.get("health:probe") != "1":
        raise RuntimeError("cache did not return the value just written")
    return "ok"


def _admin_client():
    # confluent-kafka clients must not cross a fork: build one per process.
    from confluent_kafka.admin import AdminClient

    with _kafka_admin_lock:
        if _kafka_admin["pid"] != os.getpid():
            _kafka_admin["client"] = AdminClient(
                {"bootstrap.servers": settings.KAFKA_BROKER, "socket.timeout.ms": 1000}
            )
            _kafka_admin["pid"] = os.getpid()
        return _kafka_admin["client"]


def _check_kafka() -> str:
    if not settings.KAFKA_BROKER:
        return "disabled"
    metadata = _admin_client().list_topics(timeout=KAFKA_CHECK_TIMEOUT_SECONDS)
    if not metadata.brokers:
        raise RuntimeError("no broker in cluster metadata")
    return "ok"


CHECKS = {"database": _check_database, "cache": _check_cache, "kafka": _check_kafka}


@csrf_exempt
@require_safe
def readiness(request):
    required = set(getattr(settings, "READINESS_REQUIRED", ["database"]))
    results = {}
    ready = True
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:
            results[name] = f"failing: {type(exc).__name__}: {exc}"
            logger.warning("readiness check %s failing: %s", name, exc)
            ready = ready and name not in required
    body = {"status": "ready" if ready else "unavailable", "checks": results}
    return JsonResponse(body, status=200 if ready else 503)
