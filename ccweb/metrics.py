"""The /metrics endpoint: django-prometheus defaults plus ccweb's own metrics.

Counters and histograms live as module-level objects in the app that owns
them and work in gunicorn's multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
Gauges that describe shared state (the outbox backlog) are read at scrape
time instead, so every worker reports the same truth; apps add them with
`register_scrape_gauge` (or `register_scrape_collector` for labelled ones).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

import prometheus_client
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

_scrape_gauges: list[tuple[str, str, Callable[[], float]]] = []


def register_scrape_gauge(
    name: str, documentation: str, read: Callable[[], float]
) -> None:
    """Report `read()` as gauge `name` on every scrape (idempotent by name)."""
    if all(existing != name for existing, _, _ in _scrape_gauges):
        _scrape_gauges.append((name, documentation, read))


_scrape_collectors: list[tuple[str, Callable[[], Iterable[Metric]]]] = []


def register_scrape_collector(
    name: str, collect: Callable[[], Iterable[Metric]]
) -> None:
    """Report the metric families `collect()` yields on every scrape.

    For what `register_scrape_gauge` cannot say: labelled gauges, or a
    histogram rebuilt from stored history. Idempotent by `name`.
    """
    if all(existing != name for existing, _ in _scrape_collectors):
        _scrape_collectors.append((name, collect))


class _ScrapeTimeCollector:
    def collect(self):
        for name, documentation, read in _scrape_gauges:
            try:
                value = float(read())
            except Exception:
                # A failed read must not take the whole scrape down; the
                # missing series is the signal, and the log says why.
                logger.warning("metric %s could not be read", name, exc_info=True)
                continue
            yield GaugeMetricFamily(name, documentation, value=value)
        for name, collect in _scrape_collectors:
            try:
                families = list(collect())
            except Exception:
                logger.warning("metric %s could not be read", name, exc_info=True)
                continue
            yield from families


def _registry() -> prometheus_client.CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prometheus_client.REGISTRY


@csrf_exempt
@require_safe
def metrics_view(request):
    page = prometheus_client.generate_latest(_registry())
    scrape_registry = prometheus_client.CollectorRegistry()
    scrape_registry.register(_ScrapeTimeCollector())
    page += prometheus_client.generate_latest(scrape_registry)
    return HttpResponse(page, content_type=prometheus_client.CONTENT_TYPE_LATEST)
