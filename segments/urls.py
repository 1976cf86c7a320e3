"""URL routes of the segments app (included under /api/)."""

from django.urls import path

from segments.views import OddsView, RecommendationView, UserSegmentView

urlpatterns = [
    path("user-segments/<int:user_id>", UserSegmentView.as_view(), name="user-segment"),
    path(
        "user-segments/<int:user_id>/recommendation",
        RecommendationView.as_view(),
        name="recommendation",
    ),
    path("user-segments/<int:user_id>/odds", OddsView.as_view(), name="odds"),
]
