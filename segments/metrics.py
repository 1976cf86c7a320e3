"""Prometheus metrics of the segments app (module-level, multiprocess-safe)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from ccweb.metrics import register_scrape_collector, register_scrape_gauge
from segments.models import RfmGroup, RfmRun

RECOMMENDATION_DEGRADED = Counter(
    "ccweb_recommendation_degraded_total",
    "Recommendations answered with streak 0 because Redis could not be read.",
)

# The recommendation's cached user profile (segments.profile_cache). Children
# are created here so that every result is exported from the start, at 0.
PROFILE_CACHE = Counter(
    "ccweb_segment_profile_cache_total",
    "Reads of the user profile cached in Redis for recommendations: hit, miss "
    "(not cached) or stale (changed since cached); miss and stale query "
    "PostgreSQL.",
    ["result"],
)
PROFILE_CACHE_HIT = PROFILE_CACHE.labels("hit")
PROFILE_CACHE_MISS = PROFILE_CACHE.labels("miss")
PROFILE_CACHE_STALE = PROFILE_CACHE.labels("stale")
PROFILE_INVALIDATION_FAILURES = Counter(
    "ccweb_segment_profile_invalidation_failures_total",
    "Committed segment or account changes whose cached profiles could not be "
    "marked stale (Redis failing); served until SEGMENT_PROFILE_CACHE_SECONDS.",
)


# --- RFM batch --------------------------------------------------------------------
# The batch runs in a Celery worker, which nobody scrapes, so its figures are
# read from the run history (rfm_runs) at scrape time: every web process then
# reports the same truth, in multiprocess mode too.

RFM_RUN_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


def _rfm_users() -> Iterable[Metric]:
    family = GaugeMetricFamily(
        "ccweb_rfm_users",
        "Users per RFM group after the latest succeeded RFM run.",
        labels=["group"],
    )
    latest = (
        RfmRun.objects.filter(status=RfmRun.Status.SUCCEEDED)
        .order_by("-finished_at")
        .values_list("group_counts", flat=True)
        .first()
    )
    if latest is not None:
        for group in RfmGroup.values:
            family.add_metric([group], float(latest.get(group, 0)))
    yield family


def _rfm_run_seconds() -> Iterable[Metric]:
    family = HistogramMetricFamily(
        "ccweb_rfm_run_seconds",
        "Duration of finished RFM runs (from the run history), by outcome.",
        labels=["status"],
    )
    for status in (RfmRun.Status.SUCCEEDED, RfmRun.Status.FAILED):
        runs = RfmRun.objects.filter(status=status, finished_at__isnull=False)
        durations = [
            (finished - started).total_seconds()
            for started, finished in runs.values_list("started_at", "finished_at")
        ]
        buckets = [
            (str(bound), float(sum(1 for d in durations if d <= bound)))
            for bound in RFM_RUN_SECONDS_BUCKETS
        ]
        buckets.append(("+Inf", float(len(durations))))
        family.add_metric([status.value], buckets, sum_value=sum(durations))
    yield family


def _rfm_last_success() -> float:
    finished = (
        RfmRun.objects.filter(status=RfmRun.Status.SUCCEEDED)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return finished.timestamp() if finished else 0.0


register_scrape_collector("ccweb_rfm_users", _rfm_users)
register_scrape_collector("ccweb_rfm_run_seconds", _rfm_run_seconds)
register_scrape_gauge(
    "ccweb_rfm_last_success_timestamp_seconds",
    "Unix time the latest succeeded RFM run finished (0 before the first).",
    _rfm_last_success,
)
