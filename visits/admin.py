"""Site visits in the admin: browse and filter, never edit."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from visits.models import SiteVisit


@admin.register(SiteVisit)
class SiteVisitAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "source", "visit_timestamp"]
    list_filter = ["visit_timestamp", "source"]
    search_fields = ["=user__id", "user__username", "source"]
    date_hierarchy = "visit_timestamp"
    list_select_related = ["user"]
    # Counting every row of a large table on each page load is slow.
    show_full_result_count = False
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
