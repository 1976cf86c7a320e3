"""The nightly RFM run: 02:00 UTC, a django-celery-beat entry staff can edit.

Operators change the time, disable or re-enable the run in the admin
(Periodic tasks); migrating again never overwrites their changes, because
the entry is only created when no task of that name exists.
"""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "RFM segmentation (nightly)"
# A run queued while no worker was up is dropped after this long, so a
# backlog never replays several stale runs in a row.
EXPIRE_SECONDS = 6 * 3600


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")

    if PeriodicTask.objects.filter(name=TASK_NAME).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="2",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.create(
        name=TASK_NAME,
        task="segments.compute_rfm",
        crontab=crontab,
        expire_seconds=EXPIRE_SECONDS,
        description=(
            "Recompute every user's RFM segment (segments.rfm). Also runs once "
            "shortly after celery beat starts."
        ),
    )
    # Tell a running beat (DatabaseScheduler) to reload its schedule.
    PeriodicTasks.objects.update_or_create(
        ident=1, defaults={"last_update": timezone.now()}
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0002_rfm_run_active_users"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
