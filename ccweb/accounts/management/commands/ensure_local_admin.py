"""Create the local `admin` superuser for `make run` and print its password.

The password is random, kept in `.local_admin_password` (ignored by git) so
it stays the same between runs. Refuses to run unless DEBUG is on: production
staff accounts are created with `createsuperuser`.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

PASSWORD_FILE = Path(settings.BASE_DIR) / ".local_admin_password"


class Command(BaseCommand):
    help = "Create the local admin user (DEBUG only) and print its password."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("ensure_local_admin only runs with DEBUG on")

        if not PASSWORD_FILE.exists():
            PASSWORD_FILE.write_text(secrets.token_urlsafe(12))
            PASSWORD_FILE.chmod(0o600)
        password = PASSWORD_FILE.read_text().strip()

        user_model = get_user_model()
        admin, _ = user_model.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        if not admin.check_password(password):
            admin.set_password(password)
            admin.save(update_fields=["password"])
        self.stdout.write(password)
