"""The batch and its commands on the embedded default (a SQLite file).

Each step runs `manage.py` in a subprocess against a fresh SQLite file, the
way a newcomer runs ccweb without any server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEDULE = (
    "from django_celery_beat.models import PeriodicTask; "
    "task = PeriodicTask.objects.get(task='segments.compute_rfm'); "
    "print(task.crontab.minute, task.crontab.hour, task.crontab.timezone)"
)
COUNTS = (
    "from django.contrib.auth import get_user_model; "
    "from ccweb.accounts.models import InviteCode; "
    "print(get_user_model().objects.count(), InviteCode.objects.count())"
)
# An independent recomputation with the ORM, compared with the stored rows.
CHECK_VALUES = """
from datetime import timedelta
from decimal import Decimal
from django.db.models import Count, Max, Sum
from actions.models import UserAction
from segments.models import RfmRun, UserSegment
run = RfmRun.objects.filter(status="succeeded").latest("finished_at")
window = UserAction.objects.filter(
    action_timestamp__gte=run.as_of - timedelta(days=run.window_days),
    action_timestamp__lte=run.as_of,
)
cent = Decimal("0.01")
expected = {
    row["user_id"]: (
        (run.as_of.date() - row["last"].date()).days,
        row["count"],
        row["total"].quantize(cent),
    )
    for row in window.values("user_id").annotate(
        last=Max("action_timestamp"), count=Count("id"), total=Sum("value")
    )
}
actual = {
    user_id: (recency, frequency, monetary.quantize(cent))
    for user_id, recency, frequency, monetary in UserSegment.objects.filter(
        frequency__isnull=False
    ).values_list("user_id", "recency_days", "frequency", "monetary")
}
print(len(expected), expected == actual)
"""
HOLD_A_RUN = (
    "from django.utils import timezone; from segments.models import RfmRun; "
    "RfmRun.objects.create(as_of=timezone.now(), window_days=30)"
)


class SqliteSite:
    def __init__(self, path: Path):
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("REDIS_URL", "KAFKA_BROKER", "CELERY_BROKER_URL")
        }
        self.env.update(
            DATABASE_URL=f"sqlite:///{path}", DEBUG="true", LOG_LEVEL="WARNING"
        )

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A freshly migrated SQLite file, copied by each test that needs one."""
    path = tmp_path_factory.mktemp("sqlite") / "migrated.sqlite3"
    SqliteSite(path).manage("migrate", "--no-input")
    return path


def fresh_site(migrated: Path, directory: Path) -> SqliteSite:
    path = directory / "ccweb.sqlite3"
    shutil.copy(migrated, path)
    return SqliteSite(path)


@pytest.fixture(scope="module")
def site(migrated, tmp_path_factory):
    site = fresh_site(migrated, tmp_path_factory.mktemp("seeded"))
    site.manage("seed", "--users", "300", "--seed", "5", "--no-rfm")
    return site


def test_it_computes_segments_on_sqlite(site):
    summary = json.loads(site.manage("compute_rfm", "--json"))

    assert summary["status"] == "succeeded"
    assert summary["users"] == 302
    assert sum(summary["groups"].values()) == 302


def test_it_matches_an_orm_recomputation_on_sqlite(site):
    site.manage("compute_rfm")

    active, equal = site.manage("shell", "-c", CHECK_VALUES).split()

    assert int(active) > 0
    assert equal == "True"


def test_it_finds_nobody_active_before_the_history_on_sqlite(site):
    summary = json.loads(site.manage("compute_rfm", "--json", "--as-of", "2001-01-01"))

    assert (summary["active_users"], summary["groups"]["Low"]) == (0, 302)


def test_it_skips_on_sqlite_while_a_run_is_going_on(migrated, tmp_path):
    site = fresh_site(migrated, tmp_path)
    site.manage("shell", "-c", HOLD_A_RUN)

    summary = json.loads(site.manage("compute_rfm", "--json"))

    assert summary["status"] == "skipped"


def test_it_explains_the_hot_queries_on_sqlite(site):
    last_line = site.manage("explain_queries")

    assert last_line.startswith(("SCAN", "SEARCH", "USE TEMP"))


def test_it_schedules_the_nightly_run_after_migrate(migrated, tmp_path):
    site = fresh_site(migrated, tmp_path)

    assert site.manage("shell", "-c", SCHEDULE) == "0 2 UTC"


def test_it_resets_the_database_to_the_fixed_invite_codes(migrated, tmp_path):
    site = fresh_site(migrated, tmp_path)
    site.manage("seed", "--users", "20", "--no-rfm")

    site.manage("reset_db", "--yes")

    assert site.manage("shell", "-c", COUNTS) == "0 3"
