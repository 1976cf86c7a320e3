"""The Celery application: worker, beat and the tasks of every app."""

import os
import sys
from pathlib import Path

from celery import Celery

from ccweb.config import run_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccweb.settings")

app = Celery("ccweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if Path(sys.argv[0]).name == "celery":
    # Load settings now, under the celery command itself, so that bad
    # configuration stops the worker or beat with one line, as manage.py does.
    from django.conf import settings

    run_or_exit(lambda: settings.INSTALLED_APPS)
