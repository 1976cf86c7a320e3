"""The RFM batch: every user's segment recomputed by set-based SQL.

The database does all the work: it aggregates the actions of the window per
user into a temporary table, scores the users with window functions and
upserts one segment row per user (`INSERT ... ON CONFLICT (user_id) DO
UPDATE`), all in one transaction. No row crosses into Python, so the
process's memory does not grow with users.

Definitions (docs/rfm.md has the reasoning):

- window: actions with `as_of - RFM_WINDOW_DAYS days <= action_timestamp <=
  as_of`; both ends are inclusive, so an action exactly RFM_WINDOW_DAYS old
  still counts, and actions after `as_of` never do.
- recency: UTC calendar days between the last action in the window and
  `as_of` (0 = active on the day of `as_of`); frequency: number of actions;
  monetary: sum of `value`.
- scores: 1 + floor(5 x share of active users with a strictly worse value).
  Ties get the same score; the lowest value always scores 1.
- group: the first rule of settings.RFM_RULES whose raw thresholds hold,
  else Low; users without an action in the window are Low with empty values.

Single flight: on PostgreSQL the run holds a transaction-level advisory
lock, released by the server even when the worker dies; a second run that
cannot take it skips. On SQLite a fresh "running" row in rfm_runs plays the
lock's part (SQLite serialises writers anyway).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from segments.models import RfmGroup, RfmRun, RiskProfile, UserSegment
from segments.profile_cache import mark_all_stale_on_commit

logger = logging.getLogger(__name__)

# Any constant shared by every ccweb process works as the lock's name.
ADVISORY_LOCK_KEY = 4_120_570_118
# Enough for the hash aggregate of a million users and the score sorts to
# stay in memory (see docs/benchmarks.md, P1b); only for this transaction.
BATCH_WORK_MEM = "256MB"


@dataclass
class RfmSummary:
    run_id: int
    status: str
    as_of: datetime
    window_days: int
    users: int = 0
    active_users: int = 0
    groups: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data

    def describe(self) -> str:
        if self.status == RfmRun.Status.SKIPPED:
            return f"RFM run {self.run_id} skipped: another run is in progress"
        groups = ", ".join(f"{name} {count}" for name, count in self.groups.items())
        return (
            f"RFM run {self.run_id} {self.status} as of {self.as_of.isoformat()}: "
            f"{self.users} users ({self.active_users} active in the last "
            f"{self.window_days} days; {groups}) in {self.duration_seconds:.2f}s"
        )


def compute_rfm_and_update_segments(as_of: datetime | None = None) -> RfmSummary:
    """Recompute every user's segment as of `as_of` (default now).

    Returns the summary of the run; a run that finds another one in progress
    does nothing and returns a `skipped` summary. Failures are recorded in
    the run history and raised.
    """
    as_of = as_of or timezone.now()
    if timezone.is_naive(as_of):
        raise ValueError("as_of must be timezone-aware")
    window_days = settings.RFM_WINDOW_DAYS
    started = time.monotonic()

    run = _claim_run(as_of, window_days)
    summary = RfmSummary(run.pk, run.status, as_of, window_days)
    if run.status == RfmRun.Status.SKIPPED:
        logger.info("RFM run %s skipped: another run is in progress", run.pk)
        return summary

    try:
        with transaction.atomic():
            if not _take_lock():
                summary.status = RfmRun.Status.SKIPPED
            else:
                upserted = _upsert_segments(as_of, window_days)
                # Raw SQL sends no signals: every cached recommendation
                # profile is marked stale once the new groups are committed.
                mark_all_stale_on_commit()
                summary.groups, summary.active_users = _count_groups()
                # SQLite's driver reports no row count for a WITH ... INSERT;
                # every user was upserted, so the groups add up to the same.
                summary.users = (
                    upserted if upserted >= 0 else sum(summary.groups.values())
                )
    except Exception as exc:
        try:
            error = f"{type(exc).__name__}: {exc}"
            _finish_run(run, RfmRun.Status.FAILED, error=error)
        except Exception:
            # The database itself may be what failed; the caller still gets
            # the original error, and the next run marks this row abandoned.
            logger.warning("RFM run %s: could not record its failure", run.pk)
        raise

    summary.duration_seconds = round(time.monotonic() - started, 3)
    if summary.status == RfmRun.Status.SKIPPED:
        _finish_run(run, RfmRun.Status.SKIPPED)
        logger.info("RFM run %s skipped: another run holds the lock", run.pk)
        return summary

    summary.status = RfmRun.Status.SUCCEEDED
    _finish_run(run, RfmRun.Status.SUCCEEDED, summary=summary)
    logger.info(
        "RFM run %s succeeded: %s users, %s active, groups %s, %.2fs",
        run.pk,
        summary.users,
        summary.active_users,
        summary.groups,
        summary.duration_seconds,
    )
    return summary


def parse_as_of(raw: str) -> datetime:
    """An ISO 8601 date or moment; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"{raw!r} is not an ISO 8601 date or time "
            "(e.g. 2026-01-31 or 2026-01-31T02:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


# --- Run history and the lock ---------------------------------------------------


def _stale_after() -> timedelta:
    """How long a "running" row may be trusted: the Celery hard limit and more."""
    return timedelta(seconds=settings.RFM_TIME_LIMIT_SECONDS * 2 + 120)


def _claim_run(as_of: datetime, window_days: int) -> RfmRun:
    """Write the run's history row, committed before the batch starts.

    The row must outlive a batch transaction that rolls back, so it gets its
    own short transaction. Rows left "running" by a worker that died are
    marked failed here. On SQLite, a fresh "running" row means the new run
    skips; the IMMEDIATE transaction makes that check and the insert atomic.
    """
    now = timezone.now()
    with transaction.atomic():
        RfmRun.objects.filter(
            status=RfmRun.Status.RUNNING, started_at__lt=now - _stale_after()
        ).update(
            status=RfmRun.Status.FAILED,
            finished_at=now,
            error="abandoned: the process running it stopped before finishing",
        )
        status = RfmRun.Status.RUNNING
        if connection.vendor != "postgresql":
            busy = RfmRun.objects.filter(status=RfmRun.Status.RUNNING).exists()
            if busy:
                status = RfmRun.Status.SKIPPED
        return RfmRun.objects.create(
            started_at=now,
            finished_at=now if status == RfmRun.Status.SKIPPED else None,
            as_of=as_of,
            window_days=window_days,
            status=status,
        )


def _take_lock() -> bool:
    """Take the batch lock for this transaction; False when another run has it."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        (taken,) = cursor.fetchone()
        if taken:
            # The connection's statement_timeout suits web requests, not this.
            # PostgreSQL cancels a statement a little before Celery's soft
            # limit would interrupt the driver mid-query.
            timeout_ms = int(settings.RFM_TIME_LIMIT_SECONDS * 900)
            cursor.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
            cursor.execute(f"SET LOCAL work_mem = '{BATCH_WORK_MEM}'")
    return taken


def _finish_run(
    run: RfmRun, status: str, *, summary: RfmSummary | None = None, error: str = ""
) -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.error = error[:2000]
    fields = ["status", "finished_at", "error"]
    if summary is not None:
        run.users_processed = summary.users
        run.active_users = summary.active_users
        run.group_counts = summary.groups
        fields += ["users_processed", "active_users", "group_counts"]
    run.save(update_fields=fields)


# --- The statement ----------------------------------------------------------------


def _dialect() -> dict[str, str]:
    """The only expressions that differ between PostgreSQL and SQLite."""
    if connection.vendor == "postgresql":
        return {
            "recency": (
                "CAST(%(as_of_date)s AS date) - "
                "CAST(max(action_timestamp) AT TIME ZONE 'UTC' AS date)"
            ),
            # Whole cents add up exactly in a bigint sum, whose per-user state
            # is half the size of a numeric sum's: the hash table of a million
            # users stays in memory and the aggregation runs ~10 % faster.
            "monetary": "sum(CAST(value * 100 AS bigint)) / 100",
        }
    # SQLite keeps timestamps as UTC text and decimals as binary floats:
    # rounding the sum to cents removes the float noise before comparisons.
    return {
        "recency": (
            "CAST(julianday(%(as_of_date)s) - "
            "julianday(date(max(action_timestamp))) AS INTEGER)"
        ),
        "monetary": "round(sum(value), 2)",
    }


def _group_case(params: dict[str, Any]) -> str:
    """The CASE expression of settings.RFM_RULES, thresholds as parameters."""
    # SQLite would bind a Decimal as text, which never equals a number.
    exact_decimals = connection.vendor == "postgresql"
    branches = []
    for number, (group, max_recency, min_frequency, min_monetary) in enumerate(
        settings.RFM_RULES
    ):
        params[f"group_{number}"] = group
        params[f"recency_{number}"] = max_recency
        params[f"frequency_{number}"] = min_frequency
        params[f"monetary_{number}"] = (
            Decimal(str(min_monetary)) if exact_decimals else float(min_monetary)
        )
        branches.append(
            f"WHEN scored.recency_days <= %(recency_{number})s "
            f"AND scored.frequency >= %(frequency_{number})s "
            f"AND scored.monetary >= %(monetary_{number})s "
            f"THEN %(group_{number})s"
        )
    params["low"] = RfmGroup.LOW.value
    # Users without actions have NULL values, which fail every comparison.
    return "CASE " + " ".join(branches) + " ELSE %(low)s END"


def _score(column: str, direction: str) -> str:
    # rank() - 1 counts the users with a strictly worse value; integer
    # division keeps the buckets exact and ties in the same bucket.
    return (
        f"1 + 5 * (rank() OVER (ORDER BY {column} {direction}) - 1) / count(*) OVER ()"
    )


# A temporary table of this transaction only; dropped again at its end.
ACTIVITY_TABLE = "rfm_activity"


def batch_statements(
    as_of: datetime, window_days: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """The batch's statements in order, as (name, SQL, parameters).

    1. Aggregate the window per user into a temporary table. As CREATE
       TABLE AS, PostgreSQL may run it with parallel workers, which it
       never does for the SELECT part of an INSERT.
    2. Score and group those users and upsert every user's row.
    3. Drop the temporary table.
    """
    ops = connection.ops
    params: dict[str, Any] = {
        "as_of": ops.adapt_datetimefield_value(as_of),
        "window_start": ops.adapt_datetimefield_value(
            as_of - timedelta(days=window_days)
        ),
        "as_of_date": as_of.astimezone(UTC).date().isoformat(),
        "now": ops.adapt_datetimefield_value(timezone.now()),
        "unknown": RiskProfile.UNKNOWN.value,
    }
    dialect = _dialect()
    group_case = _group_case(params)
    users_table = get_user_model()._meta.db_table
    # Only identifiers from model metadata and fixed fragments are formatted
    # in; every value is a parameter.
    aggregate = f"""
        CREATE TEMPORARY TABLE {ACTIVITY_TABLE} AS
        SELECT user_id,
               {dialect["recency"]} AS recency_days,
               count(*) AS frequency,
               {dialect["monetary"]} AS monetary
        FROM user_actions
        WHERE action_timestamp >= %(window_start)s
          AND action_timestamp <= %(as_of)s
        GROUP BY user_id
    """  # noqa: S608  # nosec B608
    upsert = f"""
        WITH scored AS (
            SELECT user_id, recency_days, frequency, monetary,
                   {_score("recency_days", "DESC")} AS r_score,
                   {_score("frequency", "ASC")} AS f_score,
                   {_score("monetary", "ASC")} AS m_score
            FROM {ACTIVITY_TABLE}
        )
        INSERT INTO {UserSegment._meta.db_table} (
            user_id, rfm_group, risk_profile, recency_days, frequency, monetary,
            r_score, f_score, m_score, last_updated
        )
        SELECT users.id, {group_case}, %(unknown)s,
               scored.recency_days, scored.frequency, scored.monetary,
               scored.r_score, scored.f_score, scored.m_score, %(now)s
        FROM {users_table} AS users
        LEFT JOIN scored ON scored.user_id = users.id
        WHERE true
        ON CONFLICT (user_id) DO UPDATE SET
            rfm_group = excluded.rfm_group,
            recency_days = excluded.recency_days,
            frequency = excluded.frequency,
            monetary = excluded.monetary,
            r_score = excluded.r_score,
            f_score = excluded.f_score,
            m_score = excluded.m_score,
            last_updated = excluded.last_updated
    """  # noqa: S608  # nosec B608
    return [
        ("aggregate", aggregate, params),
        ("upsert", upsert, params),
        ("drop", f"DROP TABLE {ACTIVITY_TABLE}", {}),
    ]


def _upsert_segments(as_of: datetime, window_days: int) -> int:
    """Run the statements; the number of rows the upsert wrote (-1: unknown)."""
    written = -1
    with connection.cursor() as cursor:
        for name, sql, params in batch_statements(as_of, window_days):
            cursor.execute(sql, params or None)
            if name == "upsert":
                written = cursor.rowcount
    return written


def _count_groups() -> tuple[dict[str, int], int]:
    """Users per group and users active in the window, after the upsert."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rfm_group, count(*), count(frequency) "
            "FROM user_segments GROUP BY rfm_group"
        )
        rows = cursor.fetchall()
    counts = dict.fromkeys(RfmGroup.values, 0)
    active = 0
    for group, users, with_actions in rows:
        counts[group] = users
        active += with_actions
    return counts, active
