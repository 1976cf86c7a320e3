"""URL routes of the visits app."""

urlpatterns = []
