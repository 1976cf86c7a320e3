"""The outbox relay sweep: every 5 seconds, a django-celery-beat entry.

The fast path publishes most events right after their commit; this sweep
publishes the rest (broker outages, crashed processes). Staff can change the
interval or disable it in the admin (Periodic tasks); migrating again never
overwrites their changes.
"""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "Outbox relay sweep"
EVERY_SECONDS = 5
# A sweep queued while no worker was up is dropped: the next one does its work.
EXPIRE_SECONDS = 10


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")

    if PeriodicTask.objects.filter(name=TASK_NAME).exists():
        return
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=EVERY_SECONDS, period="seconds"
    )
    PeriodicTask.objects.create(
        name=TASK_NAME,
        task="actions.relay_outbox",
        interval=interval,
        expire_seconds=EXPIRE_SECONDS,
        description=(
            "Publish due outbox events to Kafka (actions.relay). Safe beside "
            "`manage.py relay_outbox`: relays split the rows between them."
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
        ("actions", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
