"""URL routes of the segments app."""

urlpatterns = []
