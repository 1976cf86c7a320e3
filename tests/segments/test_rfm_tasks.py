"""The Celery side of the RFM batch: the task, the start-up run, the schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from celery.signals import beat_init
from django.db import DataError, connection

from ccweb.celery import app as celery_app
from segments.tasks import compute_rfm
from tests.segments.rfm_helpers import AS_OF, act, segment_of

REPO = Path(__file__).resolve().parents[2]
SHOW_SCHEDULE = """
from django_celery_beat.models import PeriodicTask
task = PeriodicTask.objects.get(name="RFM segmentation (nightly)")
cron = task.crontab
print(task.task, task.enabled, cron.minute, cron.hour, cron.day_of_week,
      cron.day_of_month, cron.timezone, task.expire_seconds)
"""
EXPIRE_SECONDS = 6 * 3600


@pytest.fixture
def fresh_postgres_database():
    """A new, migrated database on the test server; dropped afterwards."""
    params = connection.get_connection_params()
    name = f"rfm_schedule_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params.get("password", ""),
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://{params['user']}@{params['host']}:{params['port']}/{name}"
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=REPO,
            env={**os.environ, "DATABASE_URL": url},
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def queued_tasks(redis_client) -> list[dict]:
    """Headers of the messages waiting in the default Celery queue."""
    messages = [json.loads(raw) for raw in redis_client.lrange("celery", 0, -1)]
    return [message["headers"] for message in messages]


@pytest.mark.django_db
def test_it_runs_the_batch_and_returns_the_summary(alice):
    act(alice, AS_OF - timedelta(days=1), "3")

    summary = compute_rfm.apply(kwargs={"as_of": AS_OF.isoformat()}).get()

    assert summary["status"] == "succeeded"
    assert segment_of(alice).frequency == 1


@pytest.mark.django_db
def test_it_logs_and_raises_a_failed_run(alice, settings, caplog):
    settings.RFM_RULES = [("X" * 40, 30, 1, 0.0)]
    act(alice, AS_OF - timedelta(days=1))

    result = compute_rfm.apply(kwargs={"as_of": AS_OF.isoformat()})

    with pytest.raises(DataError):
        result.get()
    assert "RFM run failed" in caplog.text


def test_it_limits_the_run_time(settings):
    assert compute_rfm.soft_time_limit == settings.RFM_TIME_LIMIT_SECONDS
    assert compute_rfm.time_limit > compute_rfm.soft_time_limit


def test_it_enqueues_one_run_shortly_after_beat_starts(redis_client):
    beat_init.send(sender=None)

    [headers] = queued_tasks(redis_client)
    assert headers["task"] == "segments.compute_rfm"
    assert headers["eta"] and headers["expires"]


def test_it_schedules_the_batch_at_two_utc_after_migrate(fresh_postgres_database):
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW_SCHEDULE],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": fresh_postgres_database},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.stdout.split() == [
        "segments.compute_rfm",
        "True",
        "0",
        "2",
        "*",
        "*",
        "UTC",
        str(EXPIRE_SECONDS),
    ]


def test_it_registers_the_scheduled_task_name():
    celery_app.loader.import_default_modules()

    assert "segments.compute_rfm" in celery_app.tasks
