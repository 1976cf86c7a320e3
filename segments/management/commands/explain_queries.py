"""Show how the database runs ccweb's hot queries.

PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) of each query, inside a transaction
that is rolled back, so the write queries (the RFM upsert, the outbox claim)
change nothing. SQLite: EXPLAIN QUERY PLAN. Run it on a database of
realistic size (`manage.py seed --users 100000`) to see index use.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from actions.models import UserAction
from segments.rfm import batch_statements

OUTBOX_CLAIM_LIMIT = 500
ANALYZE = "EXPLAIN (ANALYZE, BUFFERS) "
CLAIM_PORTABLE = (
    "SELECT id, topic, key, payload FROM actions_outbox "
    "WHERE available_at <= %(now)s ORDER BY id LIMIT %(limit)s"
)


def rfm_aggregation_sql(
    as_of: datetime | None = None, window_days: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The floor of the batch: the bare per-user aggregation of the window."""
    now = as_of or timezone.now()
    window_start = now - timedelta(days=window_days or settings.RFM_WINDOW_DAYS)
    ops = connection.ops
    sql = (
        "SELECT user_id, max(action_timestamp), count(*), sum(value) "
        "FROM user_actions "
        "WHERE action_timestamp >= %(start)s AND action_timestamp <= %(end)s "
        "GROUP BY user_id"
    )
    return sql, {
        "start": ops.adapt_datetimefield_value(window_start),
        "end": ops.adapt_datetimefield_value(now),
    }


def recent_user_id() -> int:
    """The user of the latest action (an index lookup), else the first user."""
    latest = UserAction.objects.order_by("-action_timestamp").values_list(
        "user_id", flat=True
    )
    users = get_user_model().objects.order_by("pk").values_list("pk", flat=True)
    return latest.first() or users.first() or 0


def hot_queries(user_id: int) -> Iterator[tuple[str, str, Any]]:
    """(name, SQL, parameters) of each query worth watching."""
    yield ("RFM aggregation (the batch's floor)", *rfm_aggregation_sql())
    statements = batch_statements(timezone.now(), settings.RFM_WINDOW_DAYS)
    for name, sql, params in statements:
        if name != "drop":
            yield (f"RFM batch {name} (rolled back)", sql, params)

    history = UserAction.objects.filter(user_id=user_id).order_by("-action_timestamp")
    yield ("per-user action lookup", *history[:100].query.sql_with_params())

    # The recommendation's lookup (segments.views.group_and_risk).
    segment = (
        get_user_model()
        .objects.filter(pk=user_id)
        .values_list("segment__rfm_group", "segment__risk_profile")[:1]
    )
    yield ("recommendation lookup", *segment.query.sql_with_params())

    # The relay's claim (actions.outbox), in the shape it has on each database.
    claim = CLAIM_PORTABLE
    if connection.vendor == "postgresql":
        claim += " FOR UPDATE SKIP LOCKED"
    params = {
        "now": connection.ops.adapt_datetimefield_value(timezone.now()),
        "limit": OUTBOX_CLAIM_LIMIT,
    }
    yield ("outbox claim (rolled back)", claim, params)


class Command(BaseCommand):
    help = (
        "EXPLAIN ANALYZE the hot queries (RFM batch, per-user actions, "
        "recommendation, outbox claim); EXPLAIN QUERY PLAN on SQLite."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user",
            type=int,
            help="user id for the per-user queries (default: the latest actor)",
        )
        parser.add_argument(
            "--no-analyze",
            action="store_true",
            help="plan only, do not run the queries (PostgreSQL)",
        )

    def handle(self, *args, **options) -> None:
        postgres = connection.vendor == "postgresql"
        if postgres and not options["no_analyze"]:
            prefix = ANALYZE
        elif postgres:
            prefix = "EXPLAIN "
        else:
            prefix = "EXPLAIN QUERY PLAN "
        user_id = options["user"] or recent_user_id()

        with transaction.atomic(), connection.cursor() as cursor:
            for name, sql, params in hot_queries(user_id):
                self.stdout.write(f"== {name} ==")
                cursor.execute(prefix + sql, params)
                for row in cursor.fetchall():
                    # SQLite's rows are (id, parent, unused, detail).
                    self.stdout.write(str(row[0] if postgres else row[-1]))
                self.stdout.write("")
                if "CREATE TEMPORARY TABLE" in sql and prefix != ANALYZE:
                    # The upsert reads the table that only a real run creates.
                    cursor.execute(sql, params)
            transaction.set_rollback(True)
