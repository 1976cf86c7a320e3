"""gunicorn settings for the web process (also used by the benchmarks)."""

import os

from prometheus_client import multiprocess

bind = f"0.0.0.0:{os.environ.get('BACKEND_PORT', os.environ.get('PORT', '8000'))}"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("WEB_THREADS", "1"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None
# Import the app in each worker after the fork: Kafka producers and database
# connections must never be shared across processes.
preload_app = False


def child_exit(server, worker):
    # Drop the dead worker's live gauges from the multiprocess metrics files.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
