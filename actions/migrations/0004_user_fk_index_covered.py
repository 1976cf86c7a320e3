"""Drop the index Django gave the user foreign key of user_actions.

user_actions_user_ts_idx (user_id, action_timestamp) serves every lookup it
served. Only the index goes: Django's own AlterField would also drop and
re-add the foreign key, which checks every row of the table again.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FK_INDEX = "user_actions_user_id_22250892"


class Migration(migrations.Migration):
    dependencies = [
        ("actions", "0003_outbox_event_id_not_unique"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="useraction",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="actions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {FK_INDEX}",
                    reverse_sql=f"CREATE INDEX {FK_INDEX} ON user_actions (user_id)",
                ),
            ],
        ),
    ]
