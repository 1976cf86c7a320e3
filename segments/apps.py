from django.apps import AppConfig
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_migrate, post_save


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "RFM segments"

    def ready(self) -> None:
        # Registers the scrape-time RFM metrics in every process.
        from segments import metrics  # noqa: F401
        from segments.models import UserSegment
        from segments.signals import (
            database_migrated,
            segment_changed,
            user_deleted,
            user_saved,
        )

        # Cached recommendation profiles follow the rows they copy.
        uid = "segments.profile_cache"
        user_model = get_user_model()
        post_save.connect(segment_changed, UserSegment, dispatch_uid=uid)
        post_delete.connect(segment_changed, UserSegment, dispatch_uid=uid)
        post_save.connect(user_saved, user_model, dispatch_uid=uid)
        post_delete.connect(user_deleted, user_model, dispatch_uid=uid)
        post_migrate.connect(database_migrated, self, dispatch_uid=uid)
