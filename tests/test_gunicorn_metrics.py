"""/metrics adds up every gunicorn worker (prometheus multiprocess mode)."""

import os
import re
import urllib.request

import pytest

from tests.processes import start_gunicorn

REQUESTS = 40


@pytest.fixture
def gunicorn_server(tmp_path):
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "WEB_CONCURRENCY": "3",
        "SECURE_SSL_REDIRECT": "false",
    }
    try:
        process, base = start_gunicorn(tmp_path, env)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield base
    process.stop()


def health_count(metrics_page: str) -> float:
    pattern = (
        r"^django_http_requests_total_by_view_transport_method_total\{"
        r'[^}]*view="health"[^}]*\} ([0-9.e+]+)$'
    )
    return sum(float(value) for value in re.findall(pattern, metrics_page, re.M))


def read_metrics(base: str) -> str:
    return urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()


def test_it_counts_requests_across_all_workers(gunicorn_server):
    before = health_count(read_metrics(gunicorn_server))

    for _ in range(REQUESTS):
        urllib.request.urlopen(f"{gunicorn_server}/health", timeout=5).read()

    # Three scrapes land on different workers; each must see every request.
    counts = [health_count(read_metrics(gunicorn_server)) for _ in range(3)]
    assert counts == [before + REQUESTS] * 3
