#!/bin/sh
# One entrypoint for every process of the image:
#   web     wait for the database, migrate, serve with gunicorn
#   worker  Celery worker (outbox relay sweeps, RFM batch)
#   beat    Celery beat with the database scheduler
#   relay   the outbox relay as its own long-running process
set -eu

wait_for_database() {
  python - <<'PY'
import sys, time
import django
django.setup()
from django.db import connection
deadline = time.monotonic() + 60
while True:
    try:
        connection.ensure_connection()
        break
    except Exception as exc:
        if time.monotonic() > deadline:
            sys.exit(f"database not reachable after 60s: {exc}")
        print(f"waiting for the database: {exc}", file=sys.stderr)
        time.sleep(1)
PY
}

rm -rf "${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus}"
mkdir -p "${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus}"

case "${1:-web}" in
  web)
    wait_for_database
    python manage.py migrate --no-input
    exec gunicorn ccweb.wsgi --config docker/gunicorn.conf.py
    ;;
  worker)
    wait_for_database
    exec celery -A ccweb worker --loglevel=INFO
    ;;
  beat)
    wait_for_database
    exec celery -A ccweb beat --loglevel=INFO
    ;;
  relay)
    wait_for_database
    exec python manage.py relay_outbox
    ;;
  *)
    exec "$@"
    ;;
esac
