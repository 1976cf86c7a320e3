"""Mark cached recommendation profiles stale when what they copy changes.

Connected in SegmentsConfig.ready(). Each receiver only schedules the marker
for after the commit (segments.profile_cache): a reader that re-reads the
database before the commit would otherwise cache the old row as fresh.
QuerySet.update(), raw SQL and bulk_create() send no signals; see the
profile_cache module for what such code must do.
"""

from __future__ import annotations

from segments.models import UserSegment
from segments.profile_cache import mark_all_stale_on_commit, mark_user_stale_on_commit

# The only field of the user row the cached profile copies.
USER_FIELDS_CACHED = frozenset({"is_active"})


def segment_changed(sender, instance: UserSegment, **kwargs) -> None:
    mark_user_stale_on_commit(instance.user_id)


def user_saved(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    # A new user has no cached profile: ids with no user are never cached.
    if created:
        return
    # Saves of other fields only (last_login at every admin login, a new
    # password) leave the cached profile right.
    if update_fields is not None and not USER_FIELDS_CACHED & set(update_fields):
        return
    mark_user_stale_on_commit(instance.pk)


def user_deleted(sender, instance, **kwargs) -> None:
    mark_user_stale_on_commit(instance.pk)


def database_migrated(sender, **kwargs) -> None:
    # A migrated, flushed or recreated database (test runs, reset_db) may
    # reuse user ids that profiles in Redis still describe.
    mark_all_stale_on_commit()
