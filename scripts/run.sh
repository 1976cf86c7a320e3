#!/usr/bin/env bash
# Serve ccweb locally on the embedded default: SQLite, in-process cache, Kafka
# off (events wait in the outbox), a Celery worker with beat on a file-system
# broker. Any variable of .env.example may be exported to change that.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBUG="${DEBUG:-true}"
port="${PORT:-8000}"
bin=.venv/bin

$bin/python manage.py migrate --no-input
password=$($bin/python manage.py ensure_local_admin)

$bin/celery -A ccweb worker --beat --pool=solo --loglevel=INFO \
  --schedule .celery/beat-schedule &
worker_pid=$!
trap 'kill "$worker_pid" 2>/dev/null || true' EXIT INT TERM

cat <<TEXT

  ccweb is starting on http://127.0.0.1:${port}
  API docs:  http://127.0.0.1:${port}/api/docs
  Admin:     http://127.0.0.1:${port}/admin/  (user: admin, password: ${password})
  Health:    http://127.0.0.1:${port}/health   Metrics: /metrics

TEXT
$bin/python manage.py runserver "127.0.0.1:${port}" --noreload
