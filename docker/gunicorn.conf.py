"""gunicorn settings for the web process (also used by the benchmarks)."""

import os

from prometheus_client import multiprocess

bind = f"0.0.0.0:{os.environ.get('BACKEND_PORT', os.environ.get('PORT', '8000'))}"
# Threaded workers keep client connections alive and overlap the waits on
# PostgreSQL, Redis and Kafka; on 2 cores they served about twice the
# requests of sync workers (docs/benchmarks.md). The worker class spreads
# new connections over the workers (ccweb.serving): with plain gthread one
# worker took every connection of a burst now and then, and served half as
# much while it lasted. With connections spread, one worker per core of 8
# threads served as much as 4 workers of 4 and kept p99 latency lower,
# since fewer processes compete for the cores; more threads also let more
# single actions share an insert statement (actions.combining). Each
# thread keeps a database connection (DB_CONN_MAX_AGE), and each worker's
# outbox fast path one more: 18 for 2 cores, which PostgreSQL's
# max_connections must allow per server.
worker_class = "ccweb.serving.SpreadingThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", str(os.cpu_count() or 1)))
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None
# gunicorn's control socket sits at one fixed path per user; several servers
# on one host (replicas, benchmarks, drills) would fight over it, and ccweb
# does not use it.
control_socket_disable = True
# Import the app in each worker after the fork: Kafka producers and database
# connections must never be shared across processes.
preload_app = False


def child_exit(server, worker):
    # Drop the dead worker's live gauges from the multiprocess metrics files.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
