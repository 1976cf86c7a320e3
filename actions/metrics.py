"""Prometheus metrics of the actions app (module-level, multiprocess-safe).

`ccweb_actions_recorded_total` is labelled by action type. Types come from
clients, so the label set is bounded: each process gives its own label to
the first ACTIONS_METRIC_MAX_TYPES types it records and counts every later
type as "other". Totals are always right; only the split of rare types can
differ between processes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable

from django.conf import settings
from django.db import connection
from prometheus_client import Counter

from ccweb.metrics import register_scrape_gauge

logger = logging.getLogger(__name__)

OTHER_ACTION_TYPE = "other"
# Above this many rows the backlog gauge reports PostgreSQL's estimate: an
# exact count of a huge outbox on every scrape would cost more than it tells.
EXACT_COUNT_LIMIT = 100_000

ACTIONS_RECORDED = Counter(
    "ccweb_actions_recorded_total",
    "User actions stored through the API, by action type.",
    ["action_type"],
)
KAFKA_DELIVERY_FAILURES = Counter(
    "ccweb_kafka_delivery_failures_total",
    "Outbox events Kafka did not acknowledge (they stay in the outbox).",
    ["path"],
)
KAFKA_PUBLISHED = Counter(
    "ccweb_kafka_published_total",
    "Outbox events Kafka acknowledged: fast path after commit, or relay sweep.",
    ["path"],
)
STREAK_UPDATE_FAILURES = Counter(
    "ccweb_streak_update_failures_total",
    "Actions stored while their streak could not be updated (Redis failing).",
)

_known_types: set[str] = set()
_known_types_lock = threading.Lock()


def _label_for(action_type: str) -> str:
    if action_type in _known_types:
        return action_type
    with _known_types_lock:
        if len(_known_types) < settings.ACTIONS_METRIC_MAX_TYPES:
            _known_types.add(action_type)
            return action_type
    return OTHER_ACTION_TYPE


def count_recorded(action_types: Iterable[str]) -> None:
    for action_type, count in Tally(action_types).items():
        ACTIONS_RECORDED.labels(_label_for(action_type)).inc(count)


def outbox_pending() -> float:
    """Rows waiting in the outbox; an estimate past EXACT_COUNT_LIMIT."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM actions_outbox LIMIT %s) AS due",
            [EXACT_COUNT_LIMIT + 1],
        )
        (count,) = cursor.fetchone()
        if count <= EXACT_COUNT_LIMIT or connection.vendor != "postgresql":
            return float(count)

        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'actions_outbox'::regclass"
        )
        (estimate,) = cursor.fetchone()
    return float(max(count, estimate))


register_scrape_gauge(
    "ccweb_outbox_pending",
    "Events in the outbox not yet acknowledged by Kafka (estimated when huge).",
    outbox_pending,
)


class OutageLog:
    """Warn on the first failure of a dependency, then at most once a minute.

    During an outage every request fails the same way; one line per request
    would bury everything else. Metrics still count each failure.
    """

    interval_seconds = 60.0

    def __init__(self, what: str) -> None:
        self.what = what
        self._lock = threading.Lock()
        self._last_warning: float | None = None
        self._suppressed = 0

    def failed(self, error: BaseException) -> None:
        with self._lock:
            now = time.monotonic()
            last = self._last_warning
            if last is not None and now - last < self.interval_seconds:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last_warning = self._suppressed, 0, now

        logger.warning(
            "%s failing (%d more failures since the last warning): %s",
            self.what,
            suppressed,
            error,
        )

    def succeeded(self) -> None:
        if self._last_warning is None:
            return

        with self._lock:
            suppressed, self._suppressed, self._last_warning = self._suppressed, 0, None
        logger.info(
            "%s recovered (%d failures after the last warning)", self.what, suppressed
        )
