"""URL routes of the actions app."""

urlpatterns = []
