"""URL routes of the visits app (included under /api/)."""

from django.urls import path

from visits.views import SiteVisitView

urlpatterns = [
    path("notify/site_visit", SiteVisitView.as_view(), name="site-visit"),
]
