"""WSGI entry point for gunicorn (`gunicorn ccweb.wsgi`)."""

import os

from django.core.wsgi import get_wsgi_application

from ccweb.config import run_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccweb.settings")

application = run_or_exit(get_wsgi_application)
