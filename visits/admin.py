"""Site visits in the admin: browse and filter, never edit."""

from __future__ import annotations

from django.contrib import admin

from ccweb.readonly_admin import ReadOnlyAdmin
from visits.models import SiteVisit


@admin.register(SiteVisit)
class SiteVisitAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "source", "visit_timestamp"]
    list_filter = ["visit_timestamp", "source"]
    search_fields = ["=user__id", "user__username", "source"]
    date_hierarchy = "visit_timestamp"
    list_select_related = ["user"]
