from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"
    verbose_name = "User actions and outbox"

    def ready(self) -> None:
        from celery.signals import worker_process_shutdown

        from actions import kafka, metrics  # noqa: F401  (registers the gauge)

        # A prefork child flushes its producers before it exits.
        worker_process_shutdown.connect(kafka.shutdown, weak=False)
