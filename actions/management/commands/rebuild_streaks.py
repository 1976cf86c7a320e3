"""manage.py rebuild_streaks: recompute every streak from the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from actions.streaks import rebuild_streaks
from ccweb.redis import redis_enabled


class Command(BaseCommand):
    help = (
        "Recompute every user's streak from user_actions and replace what Redis "
        "holds (after Redis lost data, or after an import)."
    )

    def handle(self, *args, **options) -> None:
        if not redis_enabled():
            self.stderr.write(
                "REDIS_URL is not set: streaks live in this process's memory cache, "
                "so the rebuild cannot reach the web process's copy."
            )
        result = rebuild_streaks()
        self.stdout.write(
            f"Rebuilt streaks of {result.users} users with recent actions "
            f"({result.current} current); removed {result.removed} stale keys."
        )
