"""/metrics adds up every gunicorn worker (prometheus multiprocess mode)."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUESTS = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_server(tmp_path):
    port = free_port()
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "WEB_CONCURRENCY": "3",
        "PORT": str(port),
        "SECURE_SSL_REDIRECT": "false",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [
            str(gunicorn),
            "ccweb.wsgi",
            "--config",
            "docker/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            # A long timeout: an abandoned probe would still be served and
            # counted later, after the baseline is read.
            urllib.request.urlopen(f"{base}/health", timeout=15)
            break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}")
    yield base
    process.terminate()
    process.wait(timeout=20)


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
