"""Drop every table of the database and build it again from the migrations.

What migrations create comes back with it: the fixed invite codes and the
nightly RFM schedule. Streaks in Redis (counters and their state) are
deleted too, since user ids start again from 1 and old streaks would land
on new users.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from ccweb.redis import redis_client, redis_enabled

# The plain counters and the state the streak script reasons from
# (actions.streaks).
STREAK_KEYS = ("user:*:streak_count", "user:*:streak")


class Command(BaseCommand):
    help = (
        "Drop and recreate every table, then migrate (fixed invite codes "
        "included). Needs --yes; with DEBUG off it also needs --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--yes", action="store_true", help="confirm: every row will be lost"
        )
        parser.add_argument(
            "--force", action="store_true", help="allow it with DEBUG off"
        )

    def handle(self, *args, **options) -> None:
        database = connection.settings_dict["NAME"]
        if not options["yes"]:
            raise CommandError(
                f"reset_db deletes every row of {database}; "
                "run it again with --yes to confirm"
            )
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "DEBUG is off, so this may be a production database; "
                "add --force if you really mean to wipe it"
            )

        tables = self._drop_tables()
        streaks = self._drop_streaks()
        call_command("migrate", interactive=False, verbosity=0)

        self.stdout.write(
            f"reset_db: dropped {tables} tables and {streaks} streak keys, "
            f"migrated {database} again"
        )

    def _drop_tables(self) -> int:
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
            quote = connection.ops.quote_name
            if connection.vendor == "postgresql":
                # One statement: CASCADE takes foreign keys and sequences along.
                if tables:
                    names = ", ".join(quote(table) for table in tables)
                    cursor.execute(f"DROP TABLE IF EXISTS {names} CASCADE")
                return len(tables)
            with connection.constraint_checks_disabled():
                for table in tables:
                    cursor.execute(f"DROP TABLE IF EXISTS {quote(table)}")
        return len(tables)

    def _drop_streaks(self) -> int:
        if not redis_enabled():
            return 0
        client = redis_client()
        deleted = 0
        batch = []
        for pattern in STREAK_KEYS:
            for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += client.delete(*batch)
                    batch = []
        if batch:
            deleted += client.delete(*batch)
        return deleted
