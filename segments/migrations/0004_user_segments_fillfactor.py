"""Half-full pages for user_segments on PostgreSQL.

The RFM batch rewrites every row every night. With room left in each page,
the new row versions are HOT updates (same page, no index entries) as long
as the group stays the same, which is the common case: the upsert then
costs about half as much (docs/benchmarks.md, P1). SQLite has no such
setting, so this does nothing there.
"""

from django.db import migrations

FILLFACTOR = 50


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE user_segments SET (fillfactor = {FILLFACTOR})"
        )


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE user_segments RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("segments", "0003_daily_rfm_schedule")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
