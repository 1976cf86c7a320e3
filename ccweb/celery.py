"""The Celery application: worker, beat and the tasks of every app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccweb.settings")

app = Celery("ccweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
